"""``python -m bench``: the same as ``make bench``."""

import sys

from .runner import main

sys.exit(main())
