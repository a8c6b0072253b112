"""The store that holds the policy in force and never leaves the PC without one."""


from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.files import write_atomic
from guard.policy.layers import (
    machine_layers,
    merge,
    packaged_text,
    parse_toml,
    read_file_layer,
    validate,
)
from guard.policy.schema import Policy, PolicyError
from guard.policy.withhold import withheld_text, withhold_verifiers

log = logging.getLogger(__name__)

ENV_POLICY = "TELLER_GUARD_POLICY"
CENTRAL = "central policy"


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
        self._central_text: str | None = None
        self._central_etag: str | None = None
        self._withhold = False  # an agent beside the service: no verifier in any layer
        self._for_agents: tuple[str, str] | None = None  # (central text, its stripped form)
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
                layer = self._stripped(loader())
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

    def machine_policy(self) -> Policy:
        """The policy of the machine layers only (packaged < machine file / registry, or the
        override file), without the central layer: where events go and whom to trust
        (``agent.endpoint``) are the machine's to say, never the collector's (issue 8 item 6).
        A layer that fails is skipped, as in `reload` (which reports it)."""
        return validate(self._lower_doc(), "machine policy")

    def central_layer(self) -> tuple[str, str | None] | None:
        """The central layer in force as the collector sent it (TOML text, ETag), or None.
        The machine service hands it to session agents, which cannot sign a policy download."""
        with self._lock:
            if self._central_text is None:
                return None
            return self._central_text, self._central_etag

    def central_layer_for_agents(self) -> tuple[str, str | None] | None:
        """`central_layer` without its credential verifiers (`guard.policy.withhold`): what the
        machine service hands a teller's agent. The ETag is the layer's own. None when there
        is no central layer, or (logged) when it cannot be rewritten: an agent then keeps what
        it has rather than get a verifier."""
        layer = self.central_layer()
        if layer is None:
            return None
        text, etag = layer
        with self._lock:
            cached = self._for_agents
        if cached is not None and cached[0] == text:
            return cached[1], etag
        try:
            stripped = withheld_text(text, CENTRAL)
        except PolicyError as exc:
            log.error("central policy not handed to agents: %s", exc)
            return None
        with self._lock:
            self._for_agents = (text, stripped)
        return stripped, etag

    def withhold_verifiers(self) -> None:
        """From now on keep no credential verifier from any layer (an agent beside the machine
        service, which checks every credential): each is replaced by `WITHHELD`, the cached
        central policy on disk is rewritten without them, and the policy is rebuilt."""
        with self._lock:
            self._withhold = True
            text, etag = self._central_text, self._central_etag
        if text is not None:
            try:
                stripped = withheld_text(text, CENTRAL)
            except PolicyError as exc:  # keep no verifier: drop the layer until the next one
                log.error("cached central policy dropped: %s", exc)
                with self._lock:
                    self._central = self._central_text = self._central_etag = None
                self._save_central_cache("", None)
            else:
                with self._lock:
                    self._central = parse_toml(stripped, CENTRAL)
                    self._central_text = stripped
                if stripped != text:
                    self._save_central_cache(stripped, etag)
        self.reload()

    def _stripped(self, layer: dict[str, Any]) -> dict[str, Any]:
        return withhold_verifiers(layer) if self._withhold else layer

    def apply_central(self, text: str, etag: str | None) -> bool:
        """Apply a central policy document; False (and a rejection) when it does not validate
        on top of the lower layers, in which case the last good central layer stays. While
        withholding verifiers (`withhold_verifiers`) the layer is kept without them."""
        try:
            if self._withhold:
                text = withheld_text(text, CENTRAL)
            layer = parse_toml(text, CENTRAL)
            lower = self._lower_doc()
            validate(merge(lower, layer), CENTRAL)
        except PolicyError as exc:
            self._reject(CENTRAL, str(exc))
            return False
        with self._lock:
            self._central = layer
            self._central_text = text
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
                merged = merge(doc, self._stripped(loader()))
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
            self._central_text = text
            self._central_etag = etag or None
        except (OSError, UnicodeDecodeError, PolicyError) as exc:
            self._reject(str(paths[0]), f"cached central policy unusable: {exc}")

    def _save_central_cache(self, text: str, etag: str | None) -> None:
        paths = self._cache_paths()
        if paths is None:
            return
        try:
            write_atomic(paths[0], text.encode("utf-8"))
            write_atomic(paths[1], (etag or "").encode("utf-8"))
        except OSError as exc:
            log.warning("central policy cache not written: %s", exc)


