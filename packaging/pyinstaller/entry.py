"""PyInstaller's entry script: the frozen ``celeste-desktop`` runs ``celeste_desktop.app.main``."""

import multiprocessing

from celeste_desktop.app import main

if __name__ == "__main__":
    # A frozen Windows program that ever starts a process pool must call this first, or each
    # child would start the whole app again; it does nothing otherwise.
    multiprocessing.freeze_support()
    raise SystemExit(main())
