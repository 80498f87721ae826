"""`python -m t2i_cli ...` is the `t2i` command."""

import sys

from t2i_cli.commands import main

sys.exit(main())
