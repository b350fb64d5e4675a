"""`python -m bot` runs the socialcare command line."""

from bot.cli import main

raise SystemExit(main())
