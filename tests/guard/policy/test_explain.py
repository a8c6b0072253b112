"""`policy check` names contradictions a valid policy can hold, each on its line."""

from __future__ import annotations

import pytest

from guard.policy.explain import explain
from guard.scan.detectors import TYPES

# (case, policy layer text, expected (line, key, words in the message)) — None: no problem.
CASES: list[tuple[str, str, tuple[int, str, str] | None]] = [
    ("warn equal to lock", "[idle]\nwarn_after_s = 300\nlock_after_s = 300\n",
     (1, "idle", "must come before the lock")),
    ("warn after lock", "[idle]\nlock_after_s = 60\nwarn_after_s = 120\n",
     (1, "idle", "(warn_after_s = 120)")),
    ("lock moved before the default warning", "[idle]\nlock_after_s = 200\n",
     (1, "idle", "(lock_after_s = 200)")),
    ("warn before lock is fine", "[idle]\nwarn_after_s = 100\nlock_after_s = 200\n", None),
    ("type no detector knows",
     '[[rules]]\nchannel = "clipboard"\ntypes = ["CN_SSN"]\naction = "block"\n',
     (3, "rules[0].types", "never matches: no detector reports CN_SSN")),
    ("one of the types unknown",
     '[[rules]]\nchannel = "clipboard"\ntypes = ["BANK_CARD", "IBAN"]\naction = "block"\n',
     (3, "rules[0].types", "partly dead: no detector reports IBAN")),
    ("known types are fine",
     '[[rules]]\nchannel = "clipboard"\ntypes = ["BANK_CARD"]\naction = "block"\n', None),
    ("kind the channel never produces",
     '[[rules]]\nchannel = "usb"\nkind = "copy"\naction = "block"\n',
     (3, "rules[0].kind", "the usb channel produces no kind 'copy'")),
    ("kind of another channel's spelling",
     '[[rules]]\nchannel = "print"\nkind = "file_written"\naction = "notify"\n',
     (3, "rules[0].kind", "produces: job_held")),
    ("kind that is a report",
     '[[rules]]\nchannel = "clipboard"\nkind = "cleared"\naction = "block"\n',
     (3, "rules[0].kind", "report of what already happened")),
    ("kind the channel produces",
     '[[rules]]\nchannel = "usb"\nkind = "file_written"\naction = "notify"\n', None),
    ("rules never see idle",
     '[[rules]]\nchannel = "idle"\naction = "notify"\n',
     (2, "rules[0].channel", "idle observations follow [idle]")),
    ("same conditions as an earlier rule",
     '[[rules]]\nchannel = "usb"\nkind = "file_written"\naction = "notify"\n'
     '[[rules]]\nchannel = "usb"\nkind = "file_written"\naction = "block"\n',
     (5, "rules[1]", "rules[0] (line 1) comes first")),
    ("narrower than an earlier rule",
     '[[rules]]\nchannel = "clipboard"\ntypes = ["BANK_CARD", "CN_MOBILE"]\naction = "notify"\n'
     '[[rules]]\nchannel = "clipboard"\ntypes = ["BANK_CARD"]\nmin_count = 3\n'
     'action = "block"\n',
     (5, "rules[1]", "matches everything this rule matches")),
    ("broader rule after a narrower one is fine",
     '[[rules]]\nchannel = "clipboard"\ntypes = ["BANK_CARD"]\nmin_count = 3\naction = "block"\n'
     '[[rules]]\nchannel = "clipboard"\ntypes = ["BANK_CARD"]\naction = "notify"\n', None),
    ("other channel is not shadowed",
     '[[rules]]\nchannel = "usb"\naction = "notify"\n'
     '[[rules]]\nchannel = "print"\naction = "block"\n', None),
    ("rule for an allow-listed application",
     '[clipboard]\napp_allowlist = ["Excel.exe"]\n'
     '[[rules]]\nchannel = "clipboard"\nsource_app = "excel"\naction = "block"\n',
     (5, "rules[0].source_app", "is on clipboard.app_allowlist")),
    ("allow-list entry that is a path",
     '[clipboard]\napp_allowlist = ["C:\\\\Program Files\\\\app.exe"]\n',
     (2, "clipboard.app_allowlist", "not paths")),
    ("empty allow-list entry", '[print]\napp_allowlist = [" "]\n',
     (2, "print.app_allowlist", "an empty entry matches no application")),
    ("allow-list entry twice", '[clipboard]\napp_allowlist = ["wps.exe", "WPS"]\n',
     (2, "clipboard.app_allowlist", "'WPS' is listed twice")),
    ("allow-list of names is fine", '[clipboard]\napp_allowlist = ["wps.exe", "excel"]\n', None),
    ("threshold for a type no detector knows", '[thresholds]\nCN_SSN = 0.7\n',
     (2, "thresholds.CN_SSN", "applies to nothing")),
    ("threshold for a known type", '[thresholds]\nBANK_CARD = 0.7\ndefault = 0.4\n', None),
]


@pytest.mark.parametrize(("text", "expected"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_contradictions(text: str, expected: tuple[int, str, str] | None) -> None:
    problems = explain(text, known_types=TYPES)
    if expected is None:
        assert problems == []
        return
    line, key, words = expected
    assert len(problems) == 1, problems
    assert (problems[0].line, problems[0].key) == (line, key), problems[0]
    assert words in problems[0].message, problems[0].message


def test_packaged_default_has_no_contradiction() -> None:
    from guard.policy.layers import packaged_text

    assert explain(packaged_text(), layer=False, known_types=TYPES) == []


def test_rules_from_the_default_are_not_blamed_on_a_layer() -> None:
    # the layer sets no rules: the packaged ones stay and are not this file's problem
    assert explain("[clipboard]\naction = \"block\"\n", known_types=TYPES) == []


def test_policy_check_command_reports_them(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from guard.cli import main

    f = tmp_path / "p.toml"
    f.write_text('[[rules]]\nchannel = "usb"\nkind = "copy"\naction = "block"\n')
    assert main(["policy", "check", str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:line 3: rules[0].kind: never matches" in out
