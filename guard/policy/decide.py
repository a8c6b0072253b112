"""`decide()`: the pure function from an observation and its findings to a decision."""


from __future__ import annotations

from collections.abc import Iterable, Sequence

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


