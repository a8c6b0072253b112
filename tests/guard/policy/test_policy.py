"""Policy: the packaged default, layering, the last-good rule, decide() as a table, `policy check`,
and the central policy fetched from a real collector with its ETag."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from guard.model import Action, Category, Channel, Finding, Observation
from guard.policy.decide import SILENT_SUFFIX, decide, is_silent
from guard.policy.explain import explain
from guard.policy.fetch import CentralPolicyFetcher
from guard.policy.layers import merge, packaged_text, parse_toml, registry_layer, validate
from guard.policy.schema import Policy, PolicyError
from guard.policy.store import PolicyStore, Rejection


def finding(type_: str = "BANK_CARD", score: float = 0.9) -> Finding:
    return Finding(type=type_, start=0, end=16, score=score, masked="622202******0128",
                   hash="h" * 16, category=Category.C2)


def packaged() -> Policy:
    return validate(parse_toml(packaged_text(), "packaged"), "packaged")


def with_layer(text: str) -> Policy:
    return validate(merge(parse_toml(packaged_text(), "p"), parse_toml(text, "layer")), "layer")


# ---------------------------------------------------------------------------------------------
# The packaged default is what a cautious bank starts with.


def test_packaged_default_is_the_cautious_bank() -> None:
    p = packaged()
    assert p.clipboard.action == "notify" and p.clipboard.auto_clear_s == 60
    assert p.print.action == "confirm"
    assert p.usb.action == "justify" and p.screen.action == "justify"
    assert (p.idle.warn_after_s, p.idle.lock_after_s) == (240, 300)
    assert p.prompts.reasons == ("业务办理需要", "客户本人要求", "内部审核")
    assert p.clipboard.app_allowlist == ()
    assert p.threshold("BANK_CARD") == 0.6 and p.threshold("SOMETHING_NEW") == 0.5
    assert p.agent.heartbeat_interval_s == 300 and p.journal.max_events > 0
    assert p.version


# ---------------------------------------------------------------------------------------------
# decide(): a table.

CLIP = Channel.CLIPBOARD
CASES = [
    # (name, layer toml, channel, kind, findings, source_app, action, rule, silent)
    ("clipboard with card notifies", "", CLIP, "copy", [finding()], None,
     Action.NOTIFY, "clipboard.action", False),
    ("clipboard clean is silent", "", CLIP, "copy", [], None,
     Action.AUDIT, "clipboard.clean" + SILENT_SUFFIX, True),
    ("below threshold counts as clean", "", CLIP, "copy", [finding("CN_MOBILE", 0.55)], None,
     Action.AUDIT, "clipboard.clean" + SILENT_SUFFIX, True),
    ("threshold lowered by policy", "[thresholds]\nCN_MOBILE = 0.5\n", CLIP, "copy",
     [finding("CN_MOBILE", 0.55)], None, Action.NOTIFY, "clipboard.action", False),
    ("redact policy", '[clipboard]\naction = "redact"\n', CLIP, "copy", [finding()], None,
     Action.REDACT, "clipboard.action", False),
    ("block policy", '[clipboard]\naction = "block"\n', CLIP, "copy", [finding()], None,
     Action.BLOCK, "clipboard.action", False),
    ("allow-listed app is audited", '[clipboard]\napp_allowlist = ["CoreBanking.exe"]\n', CLIP,
     "copy", [finding()], "corebanking", Action.AUDIT, "clipboard.allowlist", False),
    ("allow-listed app, clean: silent", '[clipboard]\napp_allowlist = ["xclip"]\n', CLIP,
     "copy", [], "xclip", Action.AUDIT, "clipboard.allowlist" + SILENT_SUFFIX, True),
    ("other app not allow-listed", '[clipboard]\napp_allowlist = ["xclip"]\n', CLIP,
     "copy", [finding()], "gedit", Action.NOTIFY, "clipboard.action", False),
    ("print with data confirms", "", Channel.PRINT, "job_held", [finding()], None,
     Action.CONFIRM, "print.action", False),
    ("print clean is silent", "", Channel.PRINT, "job_held", [], None,
     Action.AUDIT, "print.clean" + SILENT_SUFFIX, True),
    ("usb mount justifies even when clean", "", Channel.USB, "volume_mounted", [], None,
     Action.JUSTIFY, "usb.clean", False),
    ("usb file written: packaged rule notifies", "", Channel.USB, "file_written", [finding()],
     None, Action.NOTIFY, "rules[0]", False),
    ("screen capture justifies", "", Channel.SCREEN, "hotkey", [finding()], None,
     Action.JUSTIFY, "screen.action", False),
    ("rule by type", '[[rules]]\nchannel = "clipboard"\ntypes = ["CN_RESIDENT_ID"]\n'
     'action = "block"\n', CLIP, "copy", [finding("CN_RESIDENT_ID")], None,
     Action.BLOCK, "rules[0]", False),
    ("rule by type does not match other types", '[[rules]]\nchannel = "clipboard"\n'
     'types = ["CN_RESIDENT_ID"]\naction = "block"\n', CLIP, "copy", [finding()], None,
     Action.NOTIFY, "clipboard.action", False),
    ("rule by count", '[[rules]]\nchannel = "clipboard"\nmin_count = 2\naction = "redact"\n',
     CLIP, "copy", [finding(), finding()], None, Action.REDACT, "rules[0]", False),
    ("rule by count not reached", '[[rules]]\nchannel = "clipboard"\nmin_count = 3\n'
     'action = "redact"\n', CLIP, "copy", [finding(), finding()], None,
     Action.NOTIFY, "clipboard.action", False),
    ("rule by source app", '[[rules]]\nchannel = "clipboard"\nsource_app = "WeChat.exe"\n'
     'action = "block"\n', CLIP, "copy", [finding()], "wechat.exe", Action.BLOCK, "rules[0]",
     False),
]


@pytest.mark.parametrize(
    ("layer", "channel", "kind", "findings", "app", "action", "rule", "silent"),
    [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide_table(layer: str, channel: Channel, kind: str, findings: list[Finding],
                      app: str | None, action: Action, rule: str, silent: bool) -> None:
    policy = with_layer(layer)
    obs = Observation(channel, kind, text="x", source_app=app)
    decision = decide(obs, findings, policy)
    assert (decision.action, decision.rule, is_silent(decision)) == (action, rule, silent)
    assert decide(obs, findings, policy) == decision  # pure


def test_decide_carries_prompt_parameters() -> None:
    policy = with_layer('[prompts]\ntimeout_s = 20\nmin_reason_len = 6\n')
    justify = decide(Observation(Channel.USB, "volume_mounted"), [], policy)
    assert justify.timeout_s == 20 and justify.min_reason_len == 6
    assert justify.reasons == ("业务办理需要", "客户本人要求", "内部审核")
    notify = decide(Observation(CLIP, "copy"), [finding()], policy)
    assert notify.auto_clear_s == 60 and notify.timeout_s is None and notify.reasons == ()
    never = with_layer("[clipboard]\nauto_clear_s = 0\n")
    assert decide(Observation(CLIP, "copy"), [finding()], never).auto_clear_s is None


# ---------------------------------------------------------------------------------------------
# Layers and the last good policy.


def test_layer_changes_only_its_keys(tmp_path: Path) -> None:
    f = tmp_path / "machine.toml"
    f.write_text('version = "branch-7"\n[idle]\nlock_after_s = 120\nwarn_after_s = 90\n')
    store = PolicyStore(override_file=f)
    p = store.reload()
    assert (p.version, p.idle.lock_after_s, p.idle.warn_after_s) == ("branch-7", 120, 90)
    assert p.clipboard.auto_clear_s == 60  # from the packaged default
    assert store.rejections == []


def test_broken_layer_keeps_last_good_and_says_why(tmp_path: Path) -> None:
    f = tmp_path / "machine.toml"
    f.write_text('version = "good"\n[clipboard]\naction = "redact"\n')
    store = PolicyStore(override_file=f)
    seen: list[Rejection] = []
    store.on_rejected(seen.append)
    assert store.reload().clipboard.action == "redact"
    f.write_text('version = "bad"\n[clipboard]\naction = "shout"\n')
    p = store.reload()
    assert p.version != "bad" and p.clipboard.action == "notify"  # the default, never nothing
    assert len(seen) == 1 and "clipboard.action" in seen[0].reason and seen[0].source == str(f)
    assert store.active_rejections() == seen
    store.reload()
    assert len(seen) == 1  # the same refusal is reported once, not at every reload
    f.write_text("[clipboard\n")  # not TOML at all
    store.reload()
    assert "not valid TOML" in seen[-1].reason
    f.unlink()
    store.reload()
    assert "cannot be read" in seen[-1].reason
    assert store.current().clipboard.action == "notify"
    f.write_text('[clipboard]\naction = "block"\n')
    assert store.reload().clipboard.action == "block"
    assert store.active_rejections() == [] and len(seen) == 3


def test_env_variable_points_at_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "demo.toml"
    f.write_text('version = "demo"\n')
    monkeypatch.setenv("TELLER_GUARD_POLICY", str(f))
    assert PolicyStore().reload().version == "demo"


def test_central_layer_wins_and_bad_central_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "machine.toml"
    f.write_text('[clipboard]\naction = "redact"\n')
    store = PolicyStore(override_file=f, cache_dir=tmp_path)
    store.reload()
    assert store.apply_central('version = "hq-1"\n[clipboard]\naction = "block"\n', '"e1"')
    assert store.current().clipboard.action == "block" and store.central_etag == '"e1"'
    assert not store.apply_central('[clipboard]\nauto_clear_s = "soon"\n', '"e2"')
    assert store.current().version == "hq-1" and store.central_etag == '"e1"'
    assert [r.source for r in store.active_rejections()] == ["central policy"]
    store.reload()
    assert len(store.active_rejections()) == 1  # still refused until a good one arrives
    assert store.apply_central('version = "hq-2"\n', '"e3"')
    assert store.active_rejections() == [] and store.current().version == "hq-2"
    # the good central document was cached and survives a restart without the network
    again = PolicyStore(override_file=f, cache_dir=tmp_path)
    assert again.reload().version == "hq-2"


# ---------------------------------------------------------------------------------------------
# `teller-guard policy check`.

BAD = """version = "x"

[clipboard]
action = "shout"
auto_clear_s = -1
colour = "red"

[idle]
warn_after_s = 400
lock_after_s = 300

[[rules]]
channel = "usb"
action = "notify"

[[rules]]
channel = "fax"
action = "audit"
"""


def test_explain_names_each_line() -> None:
    problems = {(p.line, p.key) for p in explain(BAD)}
    assert problems == {(4, "clipboard.action"), (5, "clipboard.auto_clear_s"),
                        (6, "clipboard.colour"), (8, "idle"), (17, "rules.1.channel")}
    messages = " ".join(p.message for p in explain(BAD))
    assert "'shout'" in messages and "unknown key" in messages and "warn_after_s" in messages


def test_explain_toml_syntax_error_line() -> None:
    problems = explain('version = "x"\n[idle]\nwarn_after_s = = 3\n')
    assert len(problems) == 1 and problems[0].line == 3


def test_packaged_file_is_a_valid_whole_policy() -> None:
    assert explain(packaged_text(), layer=False) == []


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guard.cli", "policy", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_policy_check_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    res = run_cli("check", str(bad))
    assert res.returncode == 1
    assert f"{bad}:line 4: clipboard.action" in res.stdout
    assert f"{bad}:line 17: rules.1.channel" in res.stdout
    good = tmp_path / "good.toml"
    good.write_text('[idle]\nlock_after_s = 600\n')
    res = run_cli("check", str(good))
    assert res.returncode == 0 and "OK" in res.stdout


def test_hash_secret_command_round_trip() -> None:
    from guard.credentials import verify_secret

    res = subprocess.run([sys.executable, "-m", "guard.cli", "policy", "hash-secret", "--stdin"],
                         input="it-secret-2026\n", capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0
    encoded = res.stdout.strip()
    assert encoded.startswith("scrypt$") and "it-secret" not in encoded
    assert verify_secret("it-secret-2026", encoded)
    assert not verify_secret("it-secret-2027", encoded)
    assert with_layer(f'[agent]\nit_credential_hash = "{encoded}"\n').agent.it_credential_hash


# ---------------------------------------------------------------------------------------------
# Central policy from a real collector.


def test_central_policy_with_etag_from_real_collector(tmp_path: Path) -> None:
    from guard.collector.embedded import start_embedded

    collector = start_embedded(tmp_path / "collector")
    try:
        store = PolicyStore(override_file=None, cache_dir=tmp_path / "agent", use_machine=False)
        store.reload()
        # the policy is a signed GET of an enrolled device
        assert CentralPolicyFetcher(store, collector.url).fetch_once() == "unauthorised"
        import base64

        import httpx

        from guard.delivery.enrolment import DeviceCredentials

        answer = httpx.post(f"{collector.url}/api/v1/enroll",
                            json={"token": collector.enroll_token, "hostname": "pc"}).json()
        creds = DeviceCredentials(endpoint=collector.url, device_id=answer["device_id"],
                                  key=base64.b64decode(answer["key"]))
        fetcher = CentralPolicyFetcher(store, collector.url, credentials=creds)
        assert fetcher.fetch_once() == "updated"
        etag = store.central_etag
        assert etag
        assert fetcher.fetch_once() == "unchanged"  # If-None-Match answered 304
        assert store.central_etag == etag and fetcher.reachable is True
    finally:
        collector.stop()
    assert CentralPolicyFetcher(store, collector.url, timeout_s=2).fetch_once() == "unreachable"
    assert store.current().version  # still the last good one


def test_linux_machine_policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    machine = tmp_path / "etc-policy.toml"
    machine.write_text('version = "branch-3"\n[usb]\naction = "block"\n')
    monkeypatch.setattr("guard.platforms._linux.machine.MACHINE_POLICY", machine)
    monkeypatch.setenv("TELLER_GUARD_PLATFORM", "linux")
    monkeypatch.delenv("TELLER_GUARD_POLICY", raising=False)
    p = PolicyStore().reload()
    assert (p.version, p.usb.action) == ("branch-3", "block")
    assert PolicyStore(use_machine=False).reload().usb.action == "justify"


def test_windows_registry_values_become_a_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """HKLM\\Software\\Policies\\TellerGuard at the winreg boundary: dotted value names."""
    import types

    import guard.policy.layers as gp
    from guard.platforms._windows.machine import WindowsPolicyRegistry

    values = [("version", "gpo-1", 1), ("idle.lock_after_s", 600, 4), ("idle.warn_after_s", 540, 4),
              ("clipboard.app_allowlist", ["CoreBank.exe", "Teller.exe"], 7)]
    opened: list[str] = []

    class Key:
        def __enter__(self) -> Key:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    def enum_value(key: Key, i: int) -> tuple[str, object, int]:
        if i >= len(values):
            raise OSError("no more data")
        return values[i]

    def open_key(root: object, path: str) -> Key:
        opened.append(path)
        return Key()

    fake = types.SimpleNamespace(HKEY_LOCAL_MACHINE=object(), REG_MULTI_SZ=7,
                                 OpenKey=open_key, EnumValue=enum_value)
    registry = WindowsPolicyRegistry(fake)
    layer = gp.registry_layer(registry)
    assert opened == [r"Software\Policies\TellerGuard"]
    assert layer == {"version": "gpo-1", "idle": {"lock_after_s": 600, "warn_after_s": 540},
                     "clipboard": {"app_allowlist": ["CoreBank.exe", "Teller.exe"]}}
    p = validate(merge(parse_toml(packaged_text(), "p"), layer), "registry")
    assert p.idle.lock_after_s == 600 and p.clipboard.app_allowlist == ("CoreBank.exe",
                                                                        "Teller.exe")


# ---------------------------------------------------------------------------------------------
# Each channel has its own section; idle decides by time; reports record a fixed action.


def test_each_channel_maps_to_its_own_section() -> None:
    p = packaged()
    assert p.channel(Channel.CLIPBOARD) is p.clipboard and p.channel(Channel.PRINT) is p.print
    assert p.channel(Channel.USB) is p.usb and p.channel(Channel.SCREEN) is p.screen
    assert p.channel(Channel.FILE) is p.file and p.file is not p.usb
    assert (p.file.action, p.file.clean) == ("audit", "none")
    assert p.channel(Channel.SYSTEM).action == "audit"
    assert p.clipboard.auto_clear_after() == 60 and p.usb.auto_clear_after() is None


def test_the_file_section_never_asks_per_file() -> None:
    for action in ("confirm", "justify", "redact", "lock"):
        with pytest.raises(PolicyError, match=r"file\.action"):
            with_layer(f'[file]\naction = "{action}"\n')
    assert with_layer('[file]\naction = "notify"\n').file.action == "notify"


FILE, IDLE = Channel.FILE, Channel.IDLE
MORE_CASES = [
    # (name, layer toml, channel, kind, findings, source_app, meta, action, rule, silent)
    ("at-rest file with data is audited, never justified", "", FILE, "found", [finding()], None,
     {}, Action.AUDIT, "file.action", False),
    ("at-rest clean file is silent", "", FILE, "found", [], None, {}, Action.AUDIT,
     "file.clean" + SILENT_SUFFIX, True),
    ("usb allow-list", '[usb]\napp_allowlist = ["Backup.exe"]\n', Channel.USB, "file_written",
     [finding()], "backup", {}, Action.AUDIT, "usb.allowlist", False),
    ("print allow-list, clean", '[print]\napp_allowlist = ["CoreBanking.exe"]\n', Channel.PRINT,
     "job_held", [], "CoreBanking.exe", {}, Action.AUDIT, "print.allowlist" + SILENT_SUFFIX,
     True),
    ("clipboard allow-list does not cover print", '[clipboard]\napp_allowlist = ["x"]\n',
     Channel.PRINT, "job_held", [finding()], "x", {}, Action.CONFIRM, "print.action", False),
    ("idle: in use", "", IDLE, "idle", [], None, {"idle_s": 10}, Action.AUDIT,
     "idle.active" + SILENT_SUFFIX, True),
    ("idle: warn with countdown", "", IDLE, "idle", [], None, {"idle_s": 250}, Action.NOTIFY,
     "idle.warn_after_s", False),
    ("idle: lock", "", IDLE, "idle", [], None, {"idle_s": 300}, Action.LOCK,
     "idle.lock_after_s", False),
    ("idle: thresholds from policy", "[idle]\nwarn_after_s = 30\nlock_after_s = 60\n", IDLE,
     "idle", [], None, {"idle_s": 45}, Action.NOTIFY, "idle.warn_after_s", False),
    ("idle: a lock request locks", "", IDLE, "lock", [], None, {"reason": "hotkey"},
     Action.LOCK, "idle.lock", False),
    ("idle: rules do not apply", '[[rules]]\nchannel = "idle"\naction = "audit"\n', IDLE,
     "idle", [], None, {"idle_s": 400}, Action.LOCK, "idle.lock_after_s", False),
    ("report: auto-clear tells the teller", "", CLIP, "cleared", [], None, {},
     Action.NOTIFY, "clipboard.cleared", False),
    ("report: over bounds tells the teller", "", CLIP, "skipped", [], None, {},
     Action.NOTIFY, "clipboard.skipped", False),
    ("report: unreadable content is audited", "", CLIP, "not_scanned", [], None, {},
     Action.AUDIT, "clipboard.not_scanned", False),
    ("report: error", "", CLIP, "error", [], None, {}, Action.AUDIT, "clipboard.error", False),
    ("report: unlock", "", IDLE, "unlock", [], None, {}, Action.LOCK, "idle.unlock", False),
    ("report: wrong unlock", "", IDLE, "unlock_failed", [], None, {}, Action.LOCK,
     "idle.unlock_failed", False),
]


@pytest.mark.parametrize(
    ("layer", "channel", "kind", "findings", "app", "meta", "action", "rule", "silent"),
    [c[1:] for c in MORE_CASES], ids=[c[0] for c in MORE_CASES])
def test_decide_per_channel_table(layer: str, channel: Channel, kind: str,
                                  findings: list[Finding], app: str | None, meta: dict[str, int],
                                  action: Action, rule: str, silent: bool) -> None:
    policy = with_layer(layer)
    obs = Observation(channel, kind, source_app=app, meta=meta)
    decision = decide(obs, findings, policy)
    assert (decision.action, decision.rule, is_silent(decision)) == (action, rule, silent)
    assert decision.auto_clear_s is None  # only clipboard content is cleared again
    assert decide(obs, findings, policy) == decision  # pure


def test_idle_warning_carries_its_countdown() -> None:
    policy = packaged()
    warn = decide(Observation(IDLE, "idle", meta={"idle_s": 250}), [], policy)
    assert warn.timeout_s == 50
    late = decide(Observation(IDLE, "idle_warn", meta={"idle_s": 299.9}), [], policy)
    assert late.action == Action.NOTIFY and late.timeout_s == 1.0  # never a zero countdown


# Policy layers the product and its tests used before [file] and the per-channel allow-lists.
TODAYS_LAYERS = [
    "",
    '[clipboard]\naction = "redact"\n',
    '[clipboard]\naction = "block"\napp_allowlist = ["CoreBanking.exe"]\n',
    '[clipboard]\naction = "confirm"\nauto_clear_s = 0\n',
    "[clipboard]\nmax_text_mb = 1\n",
    'version = "branch-7"\n[idle]\nlock_after_s = 120\nwarn_after_s = 90\n',
    '[idle]\nunlock = "pin"\nbackoff_after = 1\nbackoff_base_s = 1\nbackoff_max_s = 2\n',
    "[prompts]\ntimeout_s = 1\n",
    'version = "branch-3"\n[usb]\naction = "block"\nallow_window_min = 10\n',
    '[[rules]]\nchannel = "file"\naction = "notify"\n',
    '[[rules]]\nchannel = "clipboard"\nsource_app = "WeChat.exe"\naction = "block"\n',
]


@pytest.mark.parametrize("layer", TODAYS_LAYERS)
def test_policies_valid_before_still_validate(layer: str) -> None:
    assert explain(layer) == []
    with_layer(layer)


def test_the_packaged_policy_and_the_test_policies_still_validate() -> None:
    from tests.ui.x11.harness import policy_text

    assert explain(packaged_text(), layer=False) == []
    for text in (policy_text(), policy_text(warn=5, lock=10)):
        assert explain(text) == [], text
        with_layer(text)

def test_machine_layers_file_then_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """The platform's policy file, then its registry (which wins); a registry that cannot be
    read is one rejected layer, the file stays."""
    from guard import platforms
    from guard.platforms._fake import FakeMachinePaths, FakeRegistry, fake_machine

    paths = FakeMachinePaths(tmp_path)
    paths.machine_policy_file().parent.mkdir(parents=True)
    paths.machine_policy_file().write_text('version = "file-1"\n[usb]\naction = "block"\n')
    registry = FakeRegistry({"version": "gpo-2", "idle.lock_after_s": 600}, source="HKLM\\x")
    machine = dataclasses.replace(fake_machine(tmp_path), registry=registry)
    monkeypatch.setattr(platforms, "current_machine", lambda: machine)
    monkeypatch.delenv("TELLER_GUARD_POLICY", raising=False)
    p = PolicyStore().reload()
    assert (p.version, p.usb.action, p.idle.lock_after_s) == ("gpo-2", "block", 600)
    registry.broken = "the registry is unreadable"
    p = PolicyStore().reload()
    assert (p.version, p.usb.action) == ("file-1", "block")
    with pytest.raises(PolicyError, match=r"HKLM.x: cannot be read .the registry is unreadable"):
        registry_layer(registry)
