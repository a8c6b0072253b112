"""Frozen entry point of `teller-guard` (the CLI and the machine service)."""

import multiprocessing
import sys

from guard.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the OCR worker is a child process of the frozen exe
    sys.exit(main())
