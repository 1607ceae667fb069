"""`python -m genvid_worker`: see the package docstring for the contract."""

import sys

from genvid_worker.cli import main

if __name__ == "__main__":
    sys.exit(main())
