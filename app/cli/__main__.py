"""``python -m app.cli``: the ``opsconductor`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
