"""``python -m agnoshm``: the ``agnoshm`` command line (see :mod:`agnoshm.cli.main`)."""

import sys

from agnoshm.cli.main import main

if __name__ == "__main__":  # spawned benchmark workers import this module too
    sys.exit(main())
