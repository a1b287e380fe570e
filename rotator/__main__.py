"""``python -m rotator`` runs the ``jfrog-rotator`` command line."""

from rotator.cli import main

raise SystemExit(main())
