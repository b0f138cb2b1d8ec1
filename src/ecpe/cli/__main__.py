"""``python -m ecpe.cli``: the ``ecpe`` command."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
