"""The verifiers taken out of a policy before a teller's process gets it (guard.policy.withhold)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from guard.credentials import hash_secret, verify_secret
from guard.policy.layers import validate
from guard.policy.schema import WITHHELD, PolicyError
from guard.policy.store import PolicyStore
from guard.policy.withhold import holds_verifier, to_toml, withheld_text

SUP = hash_secret("sup-secret", n=2**4)
IT_HASH = hash_secret("it-secret", n=2**4)
POLICY = f"""\
version = "v1"  # a comment that goes
[agent]
it_credential_hash = "{IT_HASH}"
quarantine_key = ""
[prompts]
reasons = ["业务办理需要", "a \\"quoted\\" one\\tand a tab"]
[clipboard]
action = "block"
approval = "supervisor"
[thresholds]
default = 0.5
"cn.bank_card" = 0.75
[[rules]]
channel = "clipboard"
types = ["cn.resident_id"]
action = "block"
[[supervisors]]
id = "sup01"
name = "王主管"
credential_hash = "{SUP}"
[[supervisors]]
id = "sup02"
name = "李主管"
os_group = "tg-supervisors"
"""


def test_every_verifier_is_withheld_and_everything_else_is_kept() -> None:
    out = withheld_text(POLICY)
    assert "scrypt$" not in out
    assert not holds_verifier(tomllib.loads(out))
    assert holds_verifier(tomllib.loads(POLICY))
    original, stripped = validate(tomllib.loads(POLICY), "t"), validate(tomllib.loads(out), "t")
    assert stripped.agent.it_credential_hash == WITHHELD
    assert [(s.id, s.name, s.credential_hash, s.os_group) for s in stripped.supervisors] == [
        ("sup01", "王主管", WITHHELD, ""), ("sup02", "李主管", "", "tg-supervisors")]
    # Nothing but the verifiers differs.
    assert stripped.model_copy(update={"agent": original.agent,
                                       "supervisors": original.supervisors}) == original
    assert not verify_secret("sup-secret", WITHHELD)  # the placeholder verifies nothing


def test_a_policy_without_verifiers_means_the_same_after_the_rewrite() -> None:
    text = 'version = "plain"\n[idle]\nlock_after_s = 600.0\nwarn_after_s = 1e2\n'
    assert tomllib.loads(withheld_text(text)) == tomllib.loads(text)


def test_what_cannot_be_rewritten_is_refused_not_handed_over() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        withheld_text("version = ")
    with pytest.raises(PolicyError, match="date"):
        withheld_text("when = 2024-01-01\n")
    assert to_toml({"k": float("inf"), "a b": [True, {"x": -1}]}) == \
        'k = inf\n"a b" = [true, {x = -1}]\n'


def test_the_store_hands_agents_the_stripped_layer_and_an_agent_store_keeps_none(
        tmp_path: Path) -> None:
    service = PolicyStore(cache_dir=tmp_path / "service", use_machine=False)
    assert service.apply_central(POLICY, '"e1"')
    assert service.current().agent.it_credential_hash == IT_HASH  # the service keeps its own
    layer = service.central_layer_for_agents()
    assert layer is not None and layer[1] == '"e1"' and "scrypt$" not in layer[0]

    # An agent that cached the full layer before this version: withholding rewrites the cache.
    agent_dir = tmp_path / "agent"
    agent = PolicyStore(cache_dir=agent_dir, use_machine=False)
    assert agent.apply_central(POLICY, '"e1"')
    assert "scrypt$" in (agent_dir / "policy-central.toml").read_text("utf-8")
    agent.withhold_verifiers()
    assert "scrypt$" not in (agent_dir / "policy-central.toml").read_text("utf-8")
    assert agent.current().supervisor("sup01") is not None
    assert agent.current().supervisor("sup01").credential_hash == WITHHELD  # type: ignore[union-attr]
    # A machine layer (here the override file) and a new central layer are stripped too.
    machine = tmp_path / "machine.toml"
    machine.write_text(POLICY, encoding="utf-8")
    local = PolicyStore(override_file=machine, cache_dir=tmp_path / "agent2")
    local.withhold_verifiers()
    assert local.current().agent.it_credential_hash == WITHHELD
    assert local.apply_central(POLICY.replace('"v1"', '"v2"'), '"e2"')
    assert local.current().version == "v2"
    assert "scrypt$" not in (tmp_path / "agent2" / "policy-central.toml").read_text("utf-8")
    assert "scrypt$" not in repr(local.current())
