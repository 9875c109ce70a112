"""``python -m zsched.cli``: the same as the ``zsched`` command."""

import sys

from .main import main

sys.exit(main())
