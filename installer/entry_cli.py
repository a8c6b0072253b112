"""Frozen entry point of `teller-guard` (the CLI and the machine service)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # The OCR worker child: a frozen build has no `python -m guard.scan.ocr_worker`, so the
    # worker is this executable started with the flag (guard.scan.ocr_worker.worker_command).
    if sys.argv[1:2] == ["--ocr-worker"]:
        from guard.scan.ocr_worker import _child_main

        sys.exit(_child_main())
    multiprocessing.freeze_support()  # in case a part ever starts a multiprocessing child
    from guard.cli import main

    sys.exit(main())
