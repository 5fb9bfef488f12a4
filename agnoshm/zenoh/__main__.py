"""``python -m agnoshm.zenoh``: the Zenoh bridge (as ``agnoshm_zenoh_bridge``)."""

import sys

from agnoshm.zenoh.cli import main

sys.exit(main())
