"""``python -m celeste_desktop``: the same entry point as ``celeste-desktop``."""

from celeste_desktop.app import main

raise SystemExit(main())
