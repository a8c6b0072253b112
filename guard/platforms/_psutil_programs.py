"""The process list of the remote-control watch through psutil (Windows; any system psutil has)."""

from __future__ import annotations

from typing import Any

from guard.platforms.base import Program


class PsutilPrograms:
    """`ProgramList` by psutil; psutil is imported when first used."""

    def unavailable(self) -> str | None:
        try:
            import psutil  # noqa: F401
        except ImportError as exc:
            return f"psutil is not installed ({exc})"
        return None

    def programs(self) -> list[Program]:
        import psutil

        out = []
        for proc in psutil.process_iter(["pid", "name", "exe", "cmdline", "create_time"]):
            info: dict[str, Any] = proc.info
            names = [info.get("name") or ""]
            if info.get("exe"):
                names.append(info["exe"])
            cmdline = info.get("cmdline") or []
            if cmdline:
                names.append(cmdline[0])
            out.append(Program(int(info["pid"]), float(info.get("create_time") or 0.0),
                               tuple(n for n in names if n)))
        return out

    def end(self, pid: int) -> bool:
        import psutil

        try:
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(3)
            return True
        except psutil.TimeoutExpired:
            try:
                proc.kill()
                return True
            except psutil.Error:
                return False
        except psutil.Error:  # gone already counts as ended; access denied does not
            return not psutil.pid_exists(pid)
