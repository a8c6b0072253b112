"""The quarantine: files encrypted to IT's key leave no plaintext behind, IT restores them with the
private key (and only with it), and disk-full, damaged files and a damaged index are handled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.cli import main
from guard.enforce import quarantine as q
from guard.enforce.quarantine import (
    CHUNK,
    Quarantine,
    QuarantineError,
    RestoreError,
    WrongKeyError,
    generate_keypair,
    listing,
    restore,
)
from guard.policy.schema import Policy
from guard.scan.engine import Scanner
from guard.watchers.sweep import Sweeper, SweepState
from tests.support.core import Core

ID = "11010519491231002X"
MASKED = "110105********002X"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """IT's key pair: the private PEM's path and the policy's public line."""
    pem, public = generate_keypair()
    path = tmp_path_factory.mktemp("it") / "it-quarantine.pem"
    path.write_bytes(pem)
    return path, public


def customer_file(folder: Path, size: int = 3 * CHUNK + 17) -> tuple[Path, bytes]:
    """A retained customer file whose name and content hold an ID number."""
    folder.mkdir(parents=True, exist_ok=True)
    body = f"客户证件号码 {ID}\n".encode() + os.urandom(size) + f"\n{ID}".encode("utf-16-le")
    path = folder / f"客户 {ID}.csv"
    path.write_bytes(body)
    return path, body


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def test_the_teller_side_quarantine_holds_no_plaintext_and_it_restores_it(
        keys: tuple[Path, str], tmp_path: Path) -> None:
    pem, public = keys
    src, body = customer_file(tmp_path / "Desktop")
    box = Quarantine(tmp_path / "data" / "quarantine", public_key=public)
    moved = box.move(src, f"Desktop/客户 {MASKED}.csv")
    assert moved.encrypted and moved.name.endswith(".tgq")
    assert not src.exists()
    stored = all_bytes(box.directory)
    for form in (ID.encode(), ID.encode("utf-16-le"), ID.encode("utf-16-be"), body[200:264]):
        assert form not in stored
    assert MASKED in (box.directory / "index.jsonl").read_text("utf-8")
    assert [p.name for p in box.directory.iterdir() if p.suffix == ".part"] == []
    if sys.platform != "win32":
        assert (box.directory / moved.name).stat().st_mode & 0o777 == 0o600
    out = restore(box.directory / moved.name, q.load_private_key(pem), tmp_path / "out")
    assert out.name == src.name and out.read_bytes() == body


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
def test_every_size_round_trips(keys: tuple[Path, str], tmp_path: Path, size: int) -> None:
    pem, public = keys
    src = tmp_path / "f.bin"
    body = os.urandom(size)
    src.write_bytes(body)
    moved = Quarantine(tmp_path / "q", public_key=public).move(src, "f.bin")
    out = restore(tmp_path / "q" / moved.name, q.load_private_key(pem), tmp_path / "out")
    assert out.read_bytes() == body


def _quarantined_and_another_key(tmp_path: Path, public: str) -> tuple[Path, q.PrivateKey]:
    """A customer file quarantined to `public`, and a private key of another pair."""
    src, _ = customer_file(tmp_path / "in", size=1000)
    moved = Quarantine(tmp_path / "q", public_key=public).move(src, "in/x.csv")
    other_pem, _ = generate_keypair()
    (tmp_path / "other.pem").write_bytes(other_pem)
    return tmp_path / "q" / moved.name, q.load_private_key(tmp_path / "other.pem")


def test_another_key_is_a_clear_error_and_writes_nothing(keys: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    path, other = _quarantined_and_another_key(tmp_path, keys[1])
    with pytest.raises(WrongKeyError, match=r"encrypted to key .* not to the given key"):
        restore(path, other, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_a_header_edited_to_name_another_key_still_does_not_open(keys: tuple[Path, str],
                                                                 tmp_path: Path) -> None:
    _, public = keys
    path, other = _quarantined_and_another_key(tmp_path, public)
    data = path.read_bytes()
    path.write_bytes(data.replace(q.fingerprint(q.parse_public_key(public)).encode(),
                                  other.fingerprint.encode()))
    with pytest.raises(WrongKeyError, match="does not open this file"):
        restore(path, other, tmp_path / "out")


@pytest.mark.parametrize("damage", ["cut", "flip", "drop-last-chunk"])
def test_a_damaged_file_is_a_clear_error_and_leaves_no_partial_output(
        keys: tuple[Path, str], tmp_path: Path, damage: str) -> None:
    pem, public = keys
    src, body = customer_file(tmp_path / "in")
    moved = Quarantine(tmp_path / "q", public_key=public).move(src, "in/x.csv")
    path = tmp_path / "q" / moved.name
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-CHUNK - 100] ^= 0x01
    else:  # a whole last chunk gone: the one before it was not sealed as the last
        data = data[: len(data) - (len(body) % CHUNK + 16)]
    path.write_bytes(bytes(data))
    with pytest.raises(RestoreError, match=r"damaged|cut short"):
        restore(path, q.load_private_key(pem), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_not_a_quarantined_file(keys: tuple[Path, str], tmp_path: Path) -> None:
    pem, _ = keys
    (tmp_path / "x.tgq").write_bytes(b"TGQ1\x00")
    with pytest.raises(RestoreError, match="cut short"):
        restore(tmp_path / "x.tgq", q.load_private_key(pem), tmp_path / "out")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB filesystem (tmpfs) to fill up."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None or (hasattr(os, "geteuid") and os.geteuid() != 0):
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace')}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_leaves_the_original_in_place_and_nothing_half_written(
        keys: tuple[Path, str], tmp_path: Path, tiny_disk: Path) -> None:
    _, public = keys
    src, body = customer_file(tmp_path / "Desktop", size=CHUNK)
    box = Quarantine(tiny_disk / "quarantine", public_key=public)
    with pytest.raises(QuarantineError, match="no space left") as err:
        box.move(src, "Desktop/x.csv")
    assert ID not in str(err.value) and str(tmp_path) not in str(err.value)
    assert src.read_bytes() == body
    assert [p.name for p in box.directory.iterdir()] == []


def test_an_index_that_cannot_be_written_only_loses_the_line_not_the_file(
        keys: tuple[Path, str], tmp_path: Path) -> None:
    pem, public = keys
    box = Quarantine(tmp_path / "q", public_key=public)
    first = box.move(customer_file(tmp_path / "a", size=10)[0], "a/first.csv")
    (box.directory / "index.jsonl").unlink()
    (box.directory / "index.jsonl").mkdir()  # every append now fails, as on a full disk
    src, body = customer_file(tmp_path / "b", size=10)
    second = box.move(src, "b/second.csv")
    assert second.encrypted and not src.exists()
    found = listing(box.directory)
    assert "index cannot be read" in found.problem
    assert {e.name: e.masked_path for e in found.entries} == {first.name: "a/first.csv",
                                                              second.name: "b/second.csv"}
    out = restore(box.directory / second.name, q.load_private_key(pem), tmp_path / "out")
    assert out.read_bytes() == body


def test_a_damaged_or_lost_index_still_lists_every_file(keys: tuple[Path, str],
                                                        tmp_path: Path) -> None:
    _, public = keys
    box = Quarantine(tmp_path / "q", public_key=public)
    made = [box.move(customer_file(tmp_path / str(i), size=10)[0], f"{i}/{MASKED}.csv")
            for i in range(3)]
    index = box.directory / "index.jsonl"
    lines = index.read_text("utf-8").splitlines()
    index.write_text(lines[0] + "\n{not json\n\x00\x01garbage\n" + '{"no": "name"}\n', "utf-8")
    found = box.listing()
    assert found.damaged == 3
    assert {e.name for e in found.entries} == {m.name for m in made}
    assert all(e.masked_path.endswith(f"{MASKED}.csv") and e.encrypted for e in found.entries)
    index.unlink()
    assert len(listing(box.directory).entries) == 3
    # and moving on appends to a damaged index without trouble
    index.write_bytes(b"\xff\xfe broken")
    box.move(customer_file(tmp_path / "later", size=10)[0], "later/x.csv")
    assert len(listing(box.directory).entries) == 4


def test_without_a_key_files_are_moved_and_say_they_are_not_encrypted(tmp_path: Path) -> None:
    src, body = customer_file(tmp_path / "in", size=10)
    moved = Quarantine(tmp_path / "q", public_key=lambda: "").move(src, "in/x.csv")
    assert not moved.encrypted and not src.exists()
    assert (tmp_path / "q" / moved.name).read_bytes() == body
    assert listing(tmp_path / "q").entries[0].encrypted is False


def test_a_bad_key_in_policy_refuses_the_move_and_keeps_the_original(tmp_path: Path) -> None:
    src, body = customer_file(tmp_path / "in", size=10)
    with pytest.raises(QuarantineError, match="key in policy cannot be used"):
        Quarantine(tmp_path / "q", public_key="x25519:AAAA").move(src, "in/x.csv")
    assert src.read_bytes() == body


def test_policy_takes_keygens_line_and_refuses_anything_else(keys: tuple[Path, str]) -> None:
    _, public = keys
    assert Policy.model_validate({"agent": {"quarantine_key": public}}).agent.quarantine_key \
        == public
    for bad in ("ssh-ed25519 AAAA", "x25519:" + "A" * 40, "x25519:not base64!"):
        with pytest.raises(ValueError, match="quarantine keygen"):
            Policy.model_validate({"agent": {"quarantine_key": bad}})


def test_the_sweep_event_carries_the_masked_path_and_the_file_is_sealed(
        keys: tuple[Path, str], tmp_path: Path) -> None:
    _, public = keys
    core = Core()
    folder = tmp_path / "Desktop"
    folder.mkdir()
    src = folder / f"客户 {ID}.csv"
    src.write_text(f"姓名,证件号码\n张三,{ID}\n", encoding="utf-8")
    box = Quarantine(tmp_path / "data" / "quarantine", public_key=public)
    report = Sweeper(core.pipeline, Scanner(key=b"k" * 32), SweepState(tmp_path / "s.json"),
                     quarantine=box, cpu_share=1.0).run([folder], quarantine=True)
    assert report.retained[0].quarantined and not src.exists()
    event = core.sink.of_type("FILE_RETAINED")[-1]
    assert event.detail["quarantined"] is True
    assert ID not in json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    assert ID.encode() not in all_bytes(box.directory)


def test_the_cli_makes_a_key_lists_and_restores(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    pem = tmp_path / "it.pem"
    assert main(["quarantine", "keygen", "--private-out", str(pem)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith('quarantine_key = "x25519:')
    assert pem.stat().st_mode & 0o777 == 0o600
    assert main(["quarantine", "keygen", "--private-out", str(pem)]) == 2  # never overwritten
    capsys.readouterr()
    public = line.split('"')[1]
    src, body = customer_file(tmp_path / "in", size=CHUNK + 5)
    box = Quarantine(tmp_path / "q", public_key=public)
    moved = box.move(src, f"in/客户 {MASKED}.csv")

    assert main(["quarantine", "list", "--dir", str(box.directory), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["name"] == moved.name and listed["from"] == f"in/客户 {MASKED}.csv"

    other_pem, _ = generate_keypair()
    (tmp_path / "other.pem").write_bytes(other_pem)
    assert main(["quarantine", "restore", "--dir", str(box.directory), "--key",
                 str(tmp_path / "other.pem"), "--out", str(tmp_path / "out"), "--all"]) == 1
    err = capsys.readouterr().err
    assert "not to the given key" in err and ID not in err

    assert main(["quarantine", "restore", "--dir", str(box.directory), "--key", str(pem),
                 "--out", str(tmp_path / "out"), moved.name]) == 0
    assert (tmp_path / "out" / src.name).read_bytes() == body
    assert main(["quarantine", "restore", "--dir", str(box.directory), "--key", str(pem),
                 "--out", str(tmp_path / "out"), "../etc/passwd"]) == 1
    assert main(["quarantine", "restore", "--dir", str(box.directory),
                 "--out", str(tmp_path / "out"), moved.name]) == 1
    assert "give IT's private key" in capsys.readouterr().err


def test_sweep_events_say_whether_the_quarantined_file_was_encrypted_up_to_the_collector(
        keys: tuple[Path, str], tmp_path: Path) -> None:
    from guard.delivery.journal import Journal
    from guard.model import Event
    from tests.guard.collector._helpers import Terminal, admin_get
    from tests.support.servers import run_collector

    _, public = keys
    events = {}
    for encrypted in (True, False):
        core = Core()
        folder = tmp_path / f"Desktop-{encrypted}"
        folder.mkdir()
        (folder / "名单.csv").write_text(f"姓名,证件号码\n张三,{ID}\n", encoding="utf-8")
        box = Quarantine(tmp_path / f"q-{encrypted}", public_key=public if encrypted else "")
        report = Sweeper(core.pipeline, Scanner(key=b"k" * 32), SweepState(tmp_path / "s.json"),
                         quarantine=box, cpu_share=1.0).run([folder], quarantine=True)
        (retained,) = report.retained
        assert retained.quarantined and retained.encrypted is encrypted
        assert report.as_dict()["retained"][0]["quarantine_encrypted"] is encrypted
        event = core.sink.of_type("FILE_RETAINED")[-1]
        assert event.detail["quarantined"] is True
        assert event.detail["quarantine_encrypted"] is encrypted  # a boolean, nothing of the key
        assert public.split(":")[1] not in event.to_json()
        assert str(box.directory) not in event.to_json()
        events[encrypted] = event
    # the journal keeps the field, and the collector takes and stores it as any detail field
    journal = Journal(tmp_path / "journal.db")
    for event in events.values():
        journal.record(event)
    bodies = [Event.from_json(r.body) for r in journal.records()]
    assert [b.detail["quarantine_encrypted"] for b in bodies] == [True, False]
    journal.close()
    with run_collector(f"sqlite:///{tmp_path / 'collector.db'}") as collector:
        terminal = Terminal(collector, collector.enroll_token, "dev-quarantine-1")
        sent = [b.model_copy(update={"device": terminal.device}) for b in bodies]
        reply = terminal.send(sent)
        assert reply.status_code == 200, reply.text
        stored = admin_get(collector, collector.admin_token, "/api/v1/events").json()["events"]
        by_id = {str(e["id"]): e for e in stored}
        assert [by_id[str(e.id)]["detail"]["quarantine_encrypted"] for e in sent] == [True, False]
