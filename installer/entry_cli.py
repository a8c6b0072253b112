"""Frozen entry point of `teller-guard` (the CLI and the machine service), and on Linux of
`teller-guard-agent` too: there the agent is a link to this program (one executable carries the
modules once; installer/teller-guard.spec), told apart by the name it was started as."""

import multiprocessing
import os
import sys

AGENT = "teller-guard-agent"

if __name__ == "__main__":
    # The OCR worker child: a frozen build has no `python -m guard.scan.ocr_worker`, so the
    # worker is this executable started with the flag (guard.scan.ocr_worker.worker_command);
    # checked before the agent's ui.app is imported, so the worker never loads Qt.
    if sys.argv[1:2] == ["--ocr-worker"]:
        from guard.scan.ocr_worker import _child_main

        sys.exit(_child_main())
    multiprocessing.freeze_support()  # in case a part ever starts a multiprocessing child
    if os.path.basename(sys.argv[0]) in (AGENT, AGENT + ".exe"):
        from ui.app import main
    else:
        from guard.cli import main

    sys.exit(main())
