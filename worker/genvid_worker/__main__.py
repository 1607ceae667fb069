"""`python -m genvid_worker`: see worker/README.md for the contract."""

import sys

from genvid_worker.cli import main

if __name__ == "__main__":
    sys.exit(main())
