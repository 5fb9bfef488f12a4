"""``python -m agnoshm.ros.bridge``: the ``agnoshm_bridge`` program."""

import sys

from agnoshm.ros.bridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
