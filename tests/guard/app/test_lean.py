"""What the agent's process does not carry: httpx's command line, and a malloc arena per thread.

Each check runs in a fresh interpreter that loads the agent (`ui.app`, as the gui-script does),
for `sys.modules` and glibc's arenas are per process.
"""

from __future__ import annotations

import sys

import pytest

from tests.support.interpreter import fresh_env, run_code

CLI_ONLY = ("click", "rich", "pygments")  # what `httpx._main` imports


def run(code: str, *args: str) -> dict[str, object]:
    env = fresh_env()
    env.pop("MALLOC_ARENA_MAX", None)
    out: dict[str, object] = run_code(code, *args, env=env)
    return out


AGENT_IMPORTS = """\
import json, sys
from ui.app import main  # noqa: F401  (the agent's own imports)
import httpx

with httpx.Client() as client:  # the shipper's client still works
    pass
print(json.dumps({"httpx": "httpx" in sys.modules,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:])}))
"""


def test_the_agent_imports_httpx_without_its_command_line() -> None:
    pytest.importorskip("PySide6")
    for name in CLI_ONLY:  # installed here: without the skip they would be imported
        pytest.importorskip(name)
    seen = run(AGENT_IMPORTS, *CLI_ONLY)
    assert seen["httpx"] is True
    assert seen["loaded"] == []


def test_an_interpreter_without_the_agent_still_gets_httpx_whole() -> None:
    for name in CLI_ONLY:
        pytest.importorskip(name)
    seen = run("import json, sys, httpx; print(json.dumps({'cli': 'httpx._main' in sys.modules}))")
    assert seen["cli"] is True  # the skip is the agent's, not a change to httpx


ARENAS = """\
import ctypes, json, os, sys, tempfile, threading
if sys.argv[1] == "cap":
    from guard.scan.images import cap_malloc_arenas
    took = cap_malloc_arenas()
else:
    took = None
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(8)

def work():
    kept = [bytes(64 * 1024) for _ in range(4)]  # above pymalloc's limit: glibc's malloc
    barrier.wait()  # all eight hold memory at once: each asks for an arena
    del kept

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
fd, path = tempfile.mkstemp()
fh = libc.fdopen(fd, b"w")
libc.malloc_info(0, fh)
libc.fclose(fh)
info = open(path).read()
os.unlink(path)
print(json.dumps({"took": took, "arenas": info.count("<heap nr=")}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_arena_cap_holds_the_threads_to_two_arenas() -> None:
    free = run(ARENAS, "free")
    capped = run(ARENAS, "cap")
    assert isinstance(free["arenas"], int) and free["arenas"] > 2  # the check can fail
    assert capped["took"] is True
    assert capped["arenas"] == 2


def test_the_agent_caps_the_arenas_before_qt_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PySide6")
    import ui.app

    calls: list[str] = []

    class Stop(Exception):
        pass

    def cap() -> bool:
        calls.append("arenas")
        raise Stop

    monkeypatch.setattr(ui.app, "cap_malloc_arenas", cap)
    monkeypatch.setattr(ui.app, "QApplication", lambda *_: calls.append("qt"))
    monkeypatch.setattr(ui.app.logging, "basicConfig", lambda **_: None)
    with pytest.raises(Stop):
        ui.app.main([])
    assert calls == ["arenas"]
