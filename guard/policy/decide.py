"""`decide()`: the pure function from an observation and its findings to a decision."""


from __future__ import annotations

from collections.abc import Iterable, Sequence

from guard.events import NOT_SCANNED, ClipboardKind, IdleKind
from guard.model import Action, Channel, Decision, Finding, Observation
from guard.policy.schema import Policy

# ---------------------------------------------------------------------------------------------
# decide(): pure.


# A decision whose rule ends with this suffix means "nothing to act on, nothing to record".
SILENT_SUFFIX = ".silent"


def relevant_findings(findings: Iterable[Finding], policy: Policy) -> tuple[Finding, ...]:
    """The findings whose score reaches the policy's threshold for their type."""
    return tuple(f for f in findings if f.score >= policy.threshold(f.type))


def is_silent(decision: Decision) -> bool:
    """True when the decision means: nothing found worth recording, do nothing."""
    return decision.rule.endswith(SILENT_SUFFIX)


# Observations that report what already happened (the pipeline enforces nothing for them): the
# action each records. NOTIFY means the teller is told what happened.
REPORTED: dict[tuple[Channel, str], Action] = {
    (Channel.CLIPBOARD, ClipboardKind.SKIPPED): Action.NOTIFY,
    (Channel.CLIPBOARD, ClipboardKind.CLEARED): Action.NOTIFY,
    (Channel.CLIPBOARD, ClipboardKind.ERROR): Action.AUDIT,
    (Channel.IDLE, IdleKind.UNLOCK): Action.LOCK,
    (Channel.IDLE, IdleKind.UNLOCK_FAILED): Action.LOCK,
}


def reported_action(observation: Observation) -> Action | None:
    """The action a report records, or None when the observation is not a report."""
    if observation.kind == NOT_SCANNED:  # any channel: content the guard could not read
        return Action.AUDIT
    return REPORTED.get((observation.channel, observation.kind))


def _decision(action_name: str, rule: str, policy: Policy, observation: Observation,
              reason: str) -> Decision:
    if action_name == "none":
        return Decision(action=Action.AUDIT, rule=rule + SILENT_SUFFIX, reason=reason)
    action = Action(action_name)
    auto_clear = None
    if action in (Action.NOTIFY, Action.AUDIT, Action.CONFIRM, Action.JUSTIFY):
        auto_clear = policy.channel(observation.channel).auto_clear_after()
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


def _idle(observation: Observation, policy: Policy) -> Decision:
    """`[idle]`: a lock request locks; an idle poll warns with a countdown at `warn_after_s`
    and locks at `lock_after_s`; before that nothing happens."""
    if observation.kind == IdleKind.LOCK:
        return Decision(action=Action.LOCK, rule="idle.lock", reason="lock requested")
    idle = policy.idle
    seconds = observation.meta.get("idle_s")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        if observation.kind == IdleKind.WARN:  # the warning itself: its countdown
            return Decision(action=Action.NOTIFY, rule="idle.warn_after_s",
                            reason="the screen locks soon",
                            timeout_s=max(1.0, idle.lock_after_s - seconds))
        if seconds >= idle.lock_after_s:
            return Decision(action=Action.LOCK, rule="idle.lock_after_s",
                            reason="nobody used the PC")
        if seconds >= idle.warn_after_s:
            # A NOTIFY carrying timeout_s is a countdown: the screen locks when it runs out.
            return Decision(action=Action.NOTIFY, rule="idle.warn_after_s",
                            reason="the screen locks soon",
                            timeout_s=max(1.0, idle.lock_after_s - seconds))
    return Decision(action=Action.AUDIT, rule="idle.active" + SILENT_SUFFIX,
                    reason="the PC is in use")


def decide(observation: Observation, findings: Sequence[Finding], policy: Policy) -> Decision:
    """Decide what to do about one observation. Pure: same inputs, same decision.

    Order: a report of what already happened records its fixed action (`REPORTED`); idle
    observations follow `[idle]`'s thresholds; an observation from an application on its
    channel's `app_allowlist` is only audited (or silent when clean); then the first matching
    `[[rules]]` override; then the channel's `action` when customer data was found above
    threshold, else its `clean` action.
    """
    relevant = relevant_findings(findings, policy)
    channel = observation.channel.value
    reported = reported_action(observation)
    if reported is not None:
        return Decision(action=reported, rule=f"{channel}.{observation.kind}",
                        reason="reported by the watcher")
    if observation.channel is Channel.IDLE:
        return _idle(observation, policy)
    section = policy.channel(observation.channel)
    if observation.source_app and section.app_allowlist:
        allowed = {_app_name(a) for a in section.app_allowlist}
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
    if relevant:
        return _decision(section.action, f"{channel}.action", policy, observation,
                         "customer data found")
    return _decision(section.clean, f"{channel}.clean", policy, observation,
                     "no customer data found")
