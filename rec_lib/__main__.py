"""Entry point for ``python -m rec_lib``."""

from rec_lib.cli import main

raise SystemExit(main())
