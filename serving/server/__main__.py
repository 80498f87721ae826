"""`python -m serving.server`: the same as `t2i serve`."""

import sys

from serving.server.flags import main

sys.exit(main(prog="python -m serving.server"))
