"""The `teller-guard` entry point: every command listed, only the one that runs imported."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guard import cli


def _helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action.help for action in sub._choices_actions}


def test_the_names_table_says_what_each_module_registers() -> None:
    # the table `teller-guard -h` lists without importing the modules, against the modules' own
    full = _helps(cli.build_parser())
    assert full == cli.COMMANDS
    assert _helps(cli.build_parser(())) == full


def test_only_the_named_command_is_registered_in_full() -> None:
    for name in cli.COMMANDS:
        parser = cli.build_parser((name,))
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        # a name-only parser has nothing but -h; a registered one has its arguments or actions
        registered = {n for n, p in sub.choices.items() if len(p._actions) > 1}
        assert registered == {name}
    args = cli.build_parser(("scan",)).parse_args(["scan", "--format", "json", "a", "b"])
    assert (args.command, args.format, args.paths) == ("scan", "json", ["a", "b"])


@pytest.mark.parametrize(("argv", "command"), [
    (["scan", "a.txt"], "scan"),
    (["--version"], None),
    (["-h", "scan"], "scan"),
    ([], None),
    (["bogus", "scan"], None),
    (["--", "scan"], None),
    (["approval-code", "--device", "x"], "approval-code"),
])
def test_the_command_word_is_the_first_that_is_not_an_option(argv: list[str],
                                                             command: str | None) -> None:
    assert cli._command(argv) == command


def test_no_command_prints_the_list_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    for name, help_text in cli.COMMANDS.items():
        assert name in err
        assert help_text.split()[0] in err


def test_an_unknown_command_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bogus"])
    assert exc.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_scan_imports_neither_pydantic_nor_the_other_commands(tmp_path: Path) -> None:
    # the start-up of `teller-guard scan` (pydantic alone was ~70 ms of it)
    sample = tmp_path / "a.txt"
    sample.write_text("身份证号11010519491231002X\n", "utf-8")
    probe = (
        "import sys\n"
        "from guard import cli\n"
        f"rc = cli.main(['scan', '--format', 'json', {str(sample)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('guard.commands.')\n"
        "                or m.split('.')[0] in ('pydantic', 'pydantic_core'))\n"
        "import json\n"
        "print(json.dumps([rc, loaded]), file=sys.stderr)\n"
    )
    env = dict(os.environ, TELLER_GUARD_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rc, loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert rc == 1
    assert loaded == ["guard.commands.scan"]
    assert json.loads(proc.stdout)["findings"][0]["type"] == "CN_RESIDENT_ID"
