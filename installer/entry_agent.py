"""Frozen entry point of `teller-guard-agent` (the desktop agent)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # The OCR worker child (guard.scan.ocr_worker.worker_command): checked before ui.app is
    # imported, so the worker never loads Qt.
    if sys.argv[1:2] == ["--ocr-worker"]:
        from guard.scan.ocr_worker import _child_main

        sys.exit(_child_main())
    multiprocessing.freeze_support()  # in case a part ever starts a multiprocessing child
    from ui.app import main

    sys.exit(main())
