"""`python -m lmaas_cli ARGS`: the same as `lmaas ARGS`."""

import sys

from .main import main

sys.exit(main())
