"""Explains what is wrong with a policy file, line by line (`teller-guard policy check`).

Beyond what the schema refuses it names contradictions a valid file can hold: an idle warning
that cannot come before the lock, a `[[rules]]` entry that can never decide anything (a finding
type no detector reports, a kind its channel never produces, a channel rules never see, a rule an
earlier one always catches first, an application the allow-list already takes), and allow-list or
threshold entries that cannot match anything.
"""


from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from guard.events import KINDS, NOT_SCANNED
from guard.model import Channel
from guard.policy.decide import REPORTED
from guard.policy.layers import merge, packaged_text
from guard.policy.schema import Policy, Rule

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


def explain(text: str, *, layer: bool = True,
            known_types: Collection[str] = ()) -> list[Problem]:
    """Everything wrong with a policy text, each problem with its line.

    `layer` True checks the text as a layer on top of the packaged default (a machine or central
    policy may give only the keys it changes); False requires it to stand alone. `known_types`
    are the finding types the detectors report (`guard.scan.detectors.TYPES`, passed in because
    the policy package does not import the scanner); empty: finding types are not checked.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        return [Problem(int(match.group(1)) if match else 0, "", f"not valid TOML: {exc}")]
    full = merge(tomllib.loads(packaged_text()), doc) if layer else doc
    lines = _key_lines(text)
    try:
        policy = Policy.model_validate(full)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (misspelt? see resources/policy.toml for the known keys)"
            elif err["type"] == "literal_error":
                msg = f"{msg}; got {err.get('input')!r}"
            elif loc == ["idle"] and "warn_after_s" in msg:
                problems.append(_idle_order(full.get("idle") or {}, lines))
                continue
            problems.append(Problem(_line_for(loc, lines), ".".join(loc), msg))
        return sorted(problems, key=lambda p: (p.line, p.key))
    problems = _contradictions(policy, doc, lines, frozenset(known_types))
    return sorted(problems, key=lambda p: (p.line, p.key))


def _idle_order(idle: Mapping[str, Any], lines: Mapping[tuple[str, ...], int]) -> Problem:
    warn, lock = idle.get("warn_after_s"), idle.get("lock_after_s")
    return Problem(_line_for(("idle",), lines), "idle",
                   f"the idle warning (warn_after_s = {warn}) must come before the lock "
                   f"(lock_after_s = {lock}): the teller would be locked out without the "
                   "countdown first")


# Channels whose observations never reach `[[rules]]`: idle follows `[idle]`'s thresholds and
# system observations are the guard's own (decide() answers them before any rule).
_NO_RULES = {Channel.IDLE: "idle observations follow [idle]'s thresholds",
             Channel.SYSTEM: "system observations are the guard's own"}


def _app(name: str | None) -> str:
    return (name or "").strip().lower().removesuffix(".exe")  # as decide() compares them


def _catches(earlier: Rule, rule: Rule) -> bool:
    """True when every observation `rule` matches is matched by `earlier` first."""
    return (earlier.channel is rule.channel
            and (earlier.kind is None or earlier.kind == rule.kind)
            and (not earlier.types or (bool(rule.types) and set(rule.types) <= set(earlier.types)))
            and earlier.min_count <= rule.min_count
            and (earlier.source_app is None
                 or (rule.source_app is not None
                     and _app(earlier.source_app) == _app(rule.source_app))))


def _rule_problems(i: int, rule: Rule, policy: Policy, lines: Mapping[tuple[str, ...], int],
                   known: frozenset[str]) -> list[Problem]:
    def at(key: str | None, message: str) -> Problem:
        loc = ("rules", str(i), key) if key else ("rules", str(i))
        return Problem(_line_for(loc, lines), f"rules[{i}]" + (f".{key}" if key else ""),
                       message)

    never = "never matches: "
    if rule.channel in _NO_RULES:
        return [at("channel", never + _NO_RULES[rule.channel])]
    out = []
    kinds = KINDS.get(rule.channel)
    if rule.kind is not None and kinds is not None:
        known_kinds = [str(k) for k in kinds if (rule.channel, str(k)) not in REPORTED]
        if rule.kind == NOT_SCANNED or (rule.channel, rule.kind) in REPORTED:
            out.append(at("kind", never + f"{rule.kind!r} on {rule.channel.value} is a report "
                          "of what already happened, recorded before any rule"))
        elif rule.kind not in known_kinds:
            out.append(at("kind", never + f"the {rule.channel.value} channel produces no kind "
                          f"{rule.kind!r} (it produces: {', '.join(known_kinds)})"))
    if known and rule.types:
        unknown = [t for t in rule.types if t not in known]
        if unknown:
            what = never if len(unknown) == len(rule.types) else "partly dead: "
            out.append(at("types", what + f"no detector reports {', '.join(unknown)} "
                          f"(known types: {', '.join(sorted(known))})"))
    if rule.source_app is not None:
        allow = policy.channel(rule.channel).app_allowlist
        if _app(rule.source_app) in {_app(a) for a in allow}:
            out.append(at("source_app", never + f"{rule.source_app!r} is on "
                          f"{rule.channel.value}.app_allowlist, which is decided before any "
                          "rule"))
    for j, earlier in enumerate(policy.rules[:i]):
        if _catches(earlier, rule):
            where = _line_for(("rules", str(j)), lines)
            out.append(at(None, never + f"rules[{j}]" + (f" (line {where})" if where else "")
                          + " comes first and matches everything this rule matches"))
            break
    return out


def _contradictions(policy: Policy, doc: Mapping[str, Any],
                    lines: Mapping[tuple[str, ...], int], known: frozenset[str]) -> list[Problem]:
    """What a valid policy holds that can never take effect; only the keys this text sets."""
    problems: list[Problem] = []
    if "rules" in doc:
        for i, rule in enumerate(policy.rules):
            problems.extend(_rule_problems(i, rule, policy, lines, known))
    for channel in (Channel.CLIPBOARD, Channel.PRINT, Channel.USB, Channel.SCREEN, Channel.FILE):
        section = doc.get(channel.value)
        if not isinstance(section, Mapping) or "app_allowlist" not in section:
            continue
        seen: set[str] = set()
        for entry in policy.channel(channel).app_allowlist:
            key = f"{channel.value}.app_allowlist"
            line = _line_for((channel.value, "app_allowlist"), lines)
            if not _app(entry):
                problems.append(Problem(line, key, "an empty entry matches no application"))
            elif "/" in entry or "\\" in entry:
                problems.append(Problem(line, key, f"{entry!r} can never match: entries are "
                                        "executable names (e.g. notepad.exe), not paths"))
            elif _app(entry) in seen:
                problems.append(Problem(line, key, f"{entry!r} is listed twice"))
            seen.add(_app(entry))
    if known and isinstance(doc.get("thresholds"), Mapping):
        for name in doc["thresholds"]:
            if name != "default" and name not in known:
                problems.append(Problem(
                    _line_for(("thresholds", str(name)), lines), f"thresholds.{name}",
                    f"no detector reports {name} (known types: {', '.join(sorted(known))}); "
                    "this threshold applies to nothing"))
    return problems
