"""``python -m mediaflow`` runs the CLI."""

from mediaflow.cli import main

raise SystemExit(main())
