"""What every channel does: the policy schema, its layers, the store that keeps the last good one,
and `decide()`, the pure function from an observation and its findings to a decision.

Layers, each overriding the one before: the packaged default (resources/policy.toml) < the
machine policy (Linux /etc/teller-guard/policy.toml; Windows %ProgramData%\\TellerGuard\\policy.toml
plus HKLM\\Software\\Policies\\TellerGuard values) < the central policy from the collector. A file
given with ``--policy`` or TELLER_GUARD_POLICY takes the machine layer's place (tests, demos).
A layer that cannot be read or does not validate is rejected and the last good policy stays.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from guard.model import Action, Channel, Decision, Finding, Observation

log = logging.getLogger(__name__)

ENV_POLICY = "TELLER_GUARD_POLICY"
LINUX_MACHINE_POLICY = Path("/etc/teller-guard/policy.toml")
WINDOWS_POLICY_KEY = r"Software\Policies\TellerGuard"

CENTRAL = "central policy"

# A decision whose rule ends with this suffix means "nothing to act on, nothing to record".
SILENT_SUFFIX = ".silent"

ActionName = Literal["audit", "notify", "confirm", "justify", "redact", "block", "lock"]
CleanName = Literal["none", "audit", "notify", "confirm", "justify", "redact", "block", "lock"]


class PolicyError(Exception):
    """A policy layer cannot be used; the message says which layer and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Section):
    endpoint: str = ""
    heartbeat_interval_s: float = Field(default=300, ge=10, le=86400)
    policy_poll_interval_s: float = Field(default=600, ge=10, le=86400)
    it_credential_hash: str = ""

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be empty or an http(s) URL such as https://collector.example")
        return v.rstrip("/")

    @field_validator("it_credential_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        if v and not v.startswith("scrypt$"):
            raise ValueError("must be empty or a hash printed by `teller-guard policy hash-secret`")
        return v


class PromptsSection(_Section):
    timeout_s: float = Field(default=60, gt=0, le=3600)
    min_reason_len: int = Field(default=4, ge=0, le=200)
    reasons: tuple[str, ...] = ("业务办理需要", "客户本人要求", "内部审核")


class JournalSection(_Section):
    max_events: int = Field(default=200_000, ge=100)
    max_bytes: int = Field(default=200_000_000, ge=1_000_000)
    max_age_days: int = Field(default=180, ge=1)


class ChannelSection(_Section):
    action: ActionName = "audit"
    clean: CleanName = "none"


class ClipboardSection(ChannelSection):
    action: ActionName = "notify"
    auto_clear_s: float = Field(default=60, ge=0, le=86400)  # 0: never
    app_allowlist: tuple[str, ...] = ()
    max_text_mb: float = Field(default=8, gt=0, le=1024)
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    max_image_mb: float = Field(default=64, gt=0, le=4096)


class UsbSection(ChannelSection):
    allow_window_min: float = Field(default=30, ge=0, le=1440)


class IdleSection(_Section):
    warn_after_s: float = Field(default=240, ge=5)
    lock_after_s: float = Field(default=300, ge=10)
    unlock: Literal["auto", "pin"] = "auto"
    backoff_after: int = Field(default=3, ge=1, le=20)
    backoff_base_s: float = Field(default=5, ge=0, le=600)
    backoff_max_s: float = Field(default=300, ge=0, le=86400)

    @model_validator(mode="after")
    def _order(self) -> IdleSection:
        if self.warn_after_s >= self.lock_after_s:
            raise ValueError("warn_after_s must be smaller than lock_after_s")
        return self


class Rule(_Section):
    """An override: the first rule whose conditions all hold decides the action."""

    channel: Channel
    kind: str | None = None
    types: tuple[str, ...] = ()  # any of these finding types present
    min_count: int = Field(default=0, ge=0)  # at least this many relevant findings
    source_app: str | None = None
    action: CleanName


class Policy(_Section):
    """A whole, validated policy (after layering)."""

    version: str = Field(default="", max_length=128)
    agent: AgentSection = AgentSection()
    thresholds: dict[str, float] = Field(default_factory=lambda: {"default": 0.5})
    prompts: PromptsSection = PromptsSection()
    journal: JournalSection = JournalSection()
    clipboard: ClipboardSection = ClipboardSection()
    print: ChannelSection = ChannelSection(action="confirm")
    usb: UsbSection = UsbSection(action="justify", clean="justify")
    screen: ChannelSection = ChannelSection(action="justify", clean="justify")
    idle: IdleSection = IdleSection()
    rules: tuple[Rule, ...] = ()

    @field_validator("thresholds")
    @classmethod
    def _scores(cls, v: dict[str, float]) -> dict[str, float]:
        for name, score in v.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"threshold for {name} must be between 0 and 1")
        return v

    def threshold(self, finding_type: str) -> float:
        return self.thresholds.get(finding_type, self.thresholds.get("default", 0.5))

    def channel(self, channel: Channel) -> ChannelSection:
        section = {
            Channel.CLIPBOARD: self.clipboard,
            Channel.PRINT: self.print,
            Channel.USB: self.usb,
            Channel.SCREEN: self.screen,
            Channel.FILE: self.usb,
        }.get(channel)
        return section if section is not None else ChannelSection()


# ---------------------------------------------------------------------------------------------
# decide(): pure.


def relevant_findings(findings: Iterable[Finding], policy: Policy) -> tuple[Finding, ...]:
    """The findings whose score reaches the policy's threshold for their type."""
    return tuple(f for f in findings if f.score >= policy.threshold(f.type))


def is_silent(decision: Decision) -> bool:
    """True when the decision means: nothing found worth recording, do nothing."""
    return decision.rule.endswith(SILENT_SUFFIX)


def _decision(action_name: str, rule: str, policy: Policy, observation: Observation,
              reason: str) -> Decision:
    if action_name == "none":
        return Decision(action=Action.AUDIT, rule=rule + SILENT_SUFFIX, reason=reason)
    action = Action(action_name)
    auto_clear = None
    if observation.channel is Channel.CLIPBOARD and action in (Action.NOTIFY, Action.AUDIT,
                                                               Action.CONFIRM, Action.JUSTIFY):
        auto_clear = policy.clipboard.auto_clear_s or None
    asks = action in (Action.CONFIRM, Action.JUSTIFY)
    return Decision(
        action=action,
        rule=rule,
        reason=reason,
        timeout_s=policy.prompts.timeout_s if asks else None,
        auto_clear_s=auto_clear,
        min_reason_len=policy.prompts.min_reason_len if action is Action.JUSTIFY else 0,
        reasons=policy.prompts.reasons if action is Action.JUSTIFY else (),
    )


def _app_name(app: str | None) -> str:
    return (app or "").strip().lower().removesuffix(".exe")


def decide(observation: Observation, findings: Sequence[Finding], policy: Policy) -> Decision:
    """Decide what to do about one observation. Pure: same inputs, same decision.

    Order: clipboard copies from an allow-listed application are only audited (or silent when
    clean); then the first matching `[[rules]]` override; then the channel's `action` when
    customer data was found above threshold, else its `clean` action.
    """
    relevant = relevant_findings(findings, policy)
    channel = observation.channel.value
    if observation.channel is Channel.CLIPBOARD and observation.source_app:
        allowed = {_app_name(a) for a in policy.clipboard.app_allowlist}
        if _app_name(observation.source_app) in allowed:
            return _decision("audit" if relevant else "none", f"{channel}.allowlist", policy,
                             observation, "source application is allow-listed")
    types = {f.type for f in relevant}
    for i, rule in enumerate(policy.rules):
        if rule.channel is not observation.channel:
            continue
        if rule.kind is not None and rule.kind != observation.kind:
            continue
        if rule.types and not types.intersection(rule.types):
            continue
        if len(relevant) < rule.min_count:
            continue
        if rule.source_app is not None and _app_name(rule.source_app) != _app_name(
                observation.source_app):
            continue
        return _decision(rule.action, f"rules[{i}]", policy, observation, "override rule")
    section = policy.channel(observation.channel)
    if relevant:
        return _decision(section.action, f"{channel}.action", policy, observation,
                         "customer data found")
    return _decision(section.clean, f"{channel}.clean", policy, observation,
                     "no customer data found")


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


@dataclass(frozen=True, slots=True)
class Rejection:
    """A layer that was not applied, and why (the message names no customer data)."""

    source: str
    reason: str


class PolicyStore:
    """Holds the policy in force; rebuilding from layers never leaves the PC without one.

    Listeners get `(policy)` after every change; rejection listeners get a `Rejection` whenever a
    layer is refused (the agent turns it into a POLICY_REJECTED event). Thread-safe.
    """

    def __init__(self, *, override_file: str | Path | None = None,
                 cache_dir: Path | None = None, use_machine: bool = True) -> None:
        self._lock = threading.RLock()
        self._override = Path(override_file) if override_file else None
        if self._override is None and os.environ.get(ENV_POLICY):
            self._override = Path(os.environ[ENV_POLICY])
        self._use_machine = use_machine and self._override is None
        self._cache_dir = cache_dir
        self._central: dict[str, Any] | None = None
        self._central_etag: str | None = None
        self._policy = validate(parse_toml(packaged_text(), "packaged policy"), "packaged policy")
        self._listeners: list[Callable[[Policy], None]] = []
        self._reject_listeners: list[Callable[[Rejection], None]] = []
        self.rejections: list[Rejection] = []  # every distinct refusal, oldest first
        self._active: dict[str, Rejection] = {}
        self._seen_rejected: set[str] = set()
        self._load_central_cache()

    # -- listeners
    def on_change(self, callback: Callable[[Policy], None]) -> None:
        self._listeners.append(callback)

    def on_rejected(self, callback: Callable[[Rejection], None]) -> None:
        self._reject_listeners.append(callback)
        for r in self.active_rejections():  # refusals seen before anyone listened are not lost
            callback(r)

    def current(self) -> Policy:
        with self._lock:
            return self._policy

    @property
    def central_etag(self) -> str | None:
        with self._lock:
            return self._central_etag

    def _reject(self, source: str, reason: str) -> None:
        """Report a refused layer once; the same refusal again (next reload) is not repeated."""
        reason = reason.removeprefix(f"{source}: ")
        rejection = Rejection(source=source, reason=reason[:900])
        with self._lock:
            self._seen_rejected.add(source)
            if self._active.get(source) == rejection:
                return
            self._active[source] = rejection
            self.rejections.append(rejection)
        log.warning("policy layer rejected: %s: %s", source, rejection.reason)
        for cb in list(self._reject_listeners):
            cb(rejection)

    def active_rejections(self) -> list[Rejection]:
        """The layers refused now (cleared once the layer loads again)."""
        with self._lock:
            return list(self._active.values())

    def reload(self) -> Policy:
        """Rebuild from the layers; a layer that fails is skipped (and reported), so the result
        is always the packaged default plus every layer that validated."""
        with self._lock:
            self._seen_rejected = set()
        doc = parse_toml(packaged_text(), "packaged policy")
        for source, loader in self._layers():
            try:
                layer = loader()
                merged = merge(doc, layer)
                validate(merged, source)
            except PolicyError as exc:
                self._reject(source, str(exc))
                continue
            doc = merged
        with self._lock:
            central = self._central
        if central is not None:
            try:
                merged = merge(doc, central)
                validate(merged, CENTRAL)
                doc = merged
            except PolicyError as exc:
                self._reject(CENTRAL, str(exc))
        policy = validate(doc, "policy")
        with self._lock:
            for source in list(self._active):
                if source not in self._seen_rejected and source != CENTRAL:
                    del self._active[source]
        self._set(policy)
        return policy

    def _set(self, policy: Policy) -> None:
        with self._lock:
            changed = policy != self._policy
            self._policy = policy
        if changed:
            for cb in list(self._listeners):
                cb(policy)

    def apply_central(self, text: str, etag: str | None) -> bool:
        """Apply a central policy document; False (and a rejection) when it does not validate
        on top of the lower layers, in which case the last good central layer stays."""
        try:
            layer = parse_toml(text, CENTRAL)
            lower = self._lower_doc()
            validate(merge(lower, layer), CENTRAL)
        except PolicyError as exc:
            self._reject(CENTRAL, str(exc))
            return False
        with self._lock:
            self._central = layer
            self._central_etag = etag
            self._active.pop(CENTRAL, None)
        self._save_central_cache(text, etag)
        self.reload()
        return True

    def _layers(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        """The file/registry layers between the packaged default and the central policy."""
        if self._override is not None:
            path = self._override
            return [(str(path), lambda: read_file_layer(path))]
        return machine_layers() if self._use_machine else []

    def _lower_doc(self) -> dict[str, Any]:
        doc = parse_toml(packaged_text(), "packaged policy")
        for source, loader in self._layers():
            try:
                merged = merge(doc, loader())
                validate(merged, source)
                doc = merged
            except PolicyError:
                continue
        return doc

    # -- central cache on disk
    def _cache_paths(self) -> tuple[Path, Path] | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / "policy-central.toml", self._cache_dir / "policy-central.etag"

    def _load_central_cache(self) -> None:
        paths = self._cache_paths()
        if paths is None or not paths[0].exists():
            return
        try:
            text = paths[0].read_text(encoding="utf-8")
            etag = paths[1].read_text(encoding="utf-8").strip() if paths[1].exists() else None
            self._central = parse_toml(text, f"{paths[0]} (cached central policy)")
            self._central_etag = etag or None
        except (OSError, UnicodeDecodeError, PolicyError) as exc:
            self._reject(str(paths[0]), f"cached central policy unusable: {exc}")

    def _save_central_cache(self, text: str, etag: str | None) -> None:
        paths = self._cache_paths()
        if paths is None:
            return
        try:
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            tmp = paths[0].with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(paths[0])
            paths[1].write_text(etag or "", encoding="utf-8")
        except OSError as exc:
            log.warning("central policy cache not written: %s", exc)


class CentralPolicyFetcher:
    """Fetches GET /api/v1/policy with If-None-Match and hands new documents to the store."""

    def __init__(self, store: PolicyStore, endpoint: str, device_id: str = "",
                 timeout_s: float = 10.0, verify: Any = True) -> None:
        self._store = store
        self._endpoint = endpoint.rstrip("/")
        self._device_id = device_id
        self._timeout = timeout_s
        self._verify = verify
        self.reachable: bool | None = None

    def fetch_once(self) -> str:
        """One poll: returns "updated", "unchanged", "rejected" or "unreachable"."""
        import httpx

        headers = {"Accept": "application/toml"}
        if self._device_id:
            headers["X-TG-Device"] = self._device_id
        etag = self._store.central_etag
        if etag:
            headers["If-None-Match"] = etag
        try:
            resp = httpx.get(f"{self._endpoint}/api/v1/policy", headers=headers,
                             timeout=self._timeout, verify=self._verify)
        except httpx.HTTPError as exc:
            log.info("central policy not reachable: %s", exc.__class__.__name__)
            self.reachable = False
            return "unreachable"
        self.reachable = True
        if resp.status_code == 304:
            return "unchanged"
        if resp.status_code != 200:
            log.info("central policy answered %s", resp.status_code)
            return "unreachable"
        ok = self._store.apply_central(resp.text, resp.headers.get("ETag"))
        return "updated" if ok else "rejected"


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
