"""Frozen entry point of `teller-guard-agent` (the desktop agent)."""

import multiprocessing
import sys

from ui.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the OCR worker is a child process of the frozen exe
    sys.exit(main())
