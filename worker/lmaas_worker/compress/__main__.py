"""`python -m lmaas_worker.compress [--config PATH] [--input-dir DIR] [--output-dir DIR]`: the same as
`lmaas compress`."""
import sys

from lmaas_operator.cli import main

sys.exit(main(["compress", *sys.argv[1:]]))
