"""The policy layers: packaged default, machine file and registry, and how they merge."""


from __future__ import annotations

import copy
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guard.policy.schema import Policy, PolicyError

# ---------------------------------------------------------------------------------------------
# Layers.


LINUX_MACHINE_POLICY = Path("/etc/teller-guard/policy.toml")
WINDOWS_POLICY_KEY = r"Software\Policies\TellerGuard"


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two policy documents: tables merge key by key, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def packaged_text() -> str:
    """The packaged default policy's TOML text."""
    return resources.files("resources").joinpath("policy.toml").read_text(encoding="utf-8")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse one layer; a syntax error becomes a `PolicyError` naming the source and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc


def validate(doc: Mapping[str, Any], source: str) -> Policy:
    """Validate a (merged) document; errors become one `PolicyError` listing every problem."""
    try:
        return Policy.model_validate(dict(doc))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{source}: {problems}") from exc


def read_file_layer(path: Path) -> dict[str, Any]:
    """Read one TOML layer from a file (a missing or unreadable file is a `PolicyError`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from exc
    return parse_toml(text, str(path))


def _registry_layer() -> dict[str, Any]:
    """HKLM\\Software\\Policies\\TellerGuard values, named by dotted key ("idle.lock_after_s")."""
    if sys.platform != "win32":
        return {}
    import winreg

    doc: dict[str, Any] = {}
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, WINDOWS_POLICY_KEY)
    except OSError:
        return {}
    with key:
        i = 0
        while True:
            try:
                name, value, kind = winreg.EnumValue(key, i)
            except OSError:
                break
            i += 1
            if kind == winreg.REG_MULTI_SZ:
                value = list(value)
            node = doc
            parts = str(name).split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
    return doc


def machine_layers() -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """The machine policy layers of this platform, as (source name, loader) pairs."""
    if sys.platform == "win32":
        program_data = Path(os.environ.get("ProgramData", r"C:\ProgramData"))
        file = program_data / "TellerGuard" / "policy.toml"
        out: list[tuple[str, Callable[[], dict[str, Any]]]] = []
        if file.exists():
            out.append((str(file), lambda: read_file_layer(file)))
        out.append(("HKLM\\" + WINDOWS_POLICY_KEY, _registry_layer))
        return out
    if LINUX_MACHINE_POLICY.exists():
        return [(str(LINUX_MACHINE_POLICY), lambda: read_file_layer(LINUX_MACHINE_POLICY))]
    return []


