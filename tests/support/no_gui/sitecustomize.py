"""Makes PySide6 and pynput unimportable in this interpreter and every Python it starts.

`scripts/test.sh` puts this folder on PYTHONPATH for its second pytest run, so the core's tests
show that `guard` runs on a machine where the desktop libraries are missing (a service-only
install, a broken Qt): every import of them fails as if they were not installed.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

BLOCKED = ("PySide6", "shiboken6", "pynput")


class _Blocked(MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname.split(".", 1)[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked for this test run)",
                                      name=fullname)
        return None


sys.meta_path.insert(0, _Blocked())
