"""``python -m zsched``: the same as the ``zsched`` command."""

import sys

from .cli import main

sys.exit(main())
