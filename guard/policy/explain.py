"""Explains what is wrong with a policy file, line by line (`teller-guard policy check`)."""


from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from guard.policy.layers import merge, packaged_text
from guard.policy.schema import Policy

# ---------------------------------------------------------------------------------------------
# Explaining a file line by line (teller-guard policy check).


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file: where (line, 0 when unknown), which key, what."""

    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"']+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map every key path in a TOML text to the line that defines it (best effort, for messages)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    array_counts: dict[tuple[str, ...], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            parts = tuple(p.strip().strip('"').strip("'") for p in header.group(2).split("."))
            if header.group(1) == "[[":
                index = array_counts.get(parts, 0)
                array_counts[parts] = index + 1
                table = (*parts, str(index))
            else:
                table = parts
            lines.setdefault(table, number)
            continue
        key = _KEY.match(raw)
        if key:
            parts = tuple(p.strip().strip('"').strip("'") for p in key.group(1).split("."))
            lines.setdefault((*table, *parts), number)
    return lines


def _line_for(loc: Sequence[str], lines: Mapping[tuple[str, ...], int]) -> int:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return 0


def explain(text: str, *, layer: bool = True) -> list[Problem]:
    """Everything wrong with a policy text, each problem with its line.

    `layer` True checks the text as a layer on top of the packaged default (a machine or central
    policy may give only the keys it changes); False requires it to stand alone.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        return [Problem(int(match.group(1)) if match else 0, "", f"not valid TOML: {exc}")]
    full = merge(tomllib.loads(packaged_text()), doc) if layer else doc
    try:
        Policy.model_validate(full)
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (misspelt? see resources/policy.toml for the known keys)"
            elif err["type"] == "literal_error":
                msg = f"{msg}; got {err.get('input')!r}"
            problems.append(Problem(_line_for(loc, lines), ".".join(loc), msg))
        return sorted(problems, key=lambda p: (p.line, p.key))
    return []
