"""The policy layers: packaged default, machine file and registry, and how they merge."""


from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from teller_guard_resources import resource

from guard import platforms
from guard.platforms import PlatformUnavailable, PolicyRegistry
from guard.policy.schema import Policy, PolicyError

# ---------------------------------------------------------------------------------------------
# Layers.


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
    return resource("policy.toml").read_text(encoding="utf-8")


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


def registry_layer(registry: PolicyRegistry) -> dict[str, Any]:
    """The registry's values as a policy document: dotted names become tables
    (``idle.lock_after_s`` → ``[idle] lock_after_s``). An unreadable registry is a `PolicyError`
    (the layer is skipped, the others stay)."""
    try:
        values = registry.policy_values()
    except (PlatformUnavailable, OSError) as exc:
        raise PolicyError(f"{registry.source}: cannot be read ({exc})") from exc
    doc: dict[str, Any] = {}
    for name, value in values.items():
        node = doc
        parts = str(name).split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PolicyError(f"{registry.source}: {name} is inside the value {part!r}")
            node = child
        node[parts[-1]] = value
    return doc


def machine_layers() -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """The machine policy layers of this platform, as (source name, loader) pairs: the machine
    policy file when it exists, then the Group Policy registry where there is one."""
    machine = platforms.current_machine()
    out: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    file = machine.paths.machine_policy_file()
    if file.exists():
        out.append((str(file), lambda: read_file_layer(file)))
    registry = machine.registry
    if registry.source is not None:
        out.append((registry.source, lambda: registry_layer(registry)))
    return out
