"""One-time approval codes: bound to one device, one channel and a time window; the PC's
delivery accepts each once and records it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from guard.delivery import approval_code as ac
from guard.delivery.delivery import Delivery, DeliverySettings
from guard.delivery.enrolment import DeviceCredentials, DeviceKeyStore
from guard.model import Device
from guard.policy.store import PolicyStore

KEY = b"k" * 32
NOW = 1_750_000_000.0


def test_a_code_matches_its_device_channel_and_window_only() -> None:
    code = ac.issue(KEY, "dev1", "usb", 30, counter=7, now=NOW)
    assert len(code) == 12 and code[:4] == "0607"  # six 5-minute slots, counter 7
    found = ac.match(KEY, "dev1", "usb", ac.grouped(code), now=NOW + 60)
    assert found is not None and found.counter == 7
    assert ac.match(KEY, "dev2", "usb", code, now=NOW) is None  # another device
    assert ac.match(KEY, "dev1", "print", code, now=NOW) is None  # another channel
    assert ac.match(b"x" * 32, "dev1", "usb", code, now=NOW) is None  # another key
    assert ac.match(KEY, "dev1", "usb", code, now=NOW + 30 * 60 + ac.SLOT_S * 2) is None
    assert ac.match(KEY, "dev1", "usb", code, now=NOW - ac.SLOT_S * 3) is None  # not yet
    tampered = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert ac.match(KEY, "dev1", "usb", tampered, now=NOW) is None
    assert ac.match(KEY, "dev1", "usb", "abc", now=NOW) is None


def test_codes_of_one_slot_differ_by_counter() -> None:
    assert ac.issue(KEY, "d", "unlock", 5, 0, now=NOW) != ac.issue(KEY, "d", "unlock", 5, 1,
                                                                    now=NOW)


@pytest.mark.parametrize(("channel", "minutes"), [("nope", 5), ("usb", 0), ("usb", 10_000)])
def test_bad_requests_are_refused(channel: str, minutes: int) -> None:
    with pytest.raises(ac.CodeError):
        ac.issue(KEY, "d", channel, minutes, 0)


def _delivery(tmp_path: Path) -> Delivery:
    data = tmp_path / "data"
    data.mkdir()
    keys = DeviceKeyStore(data)
    keys._secrets = type(keys._secrets)(use_keyring=False)
    keys.save(DeviceCredentials("http://127.0.0.1:9", "dev1", KEY))
    assert json.loads((data / "enrollment.json").read_text())["device_id"] == "dev1"
    policy = tmp_path / "policy.toml"
    policy.write_text("", encoding="utf-8")
    store = PolicyStore(override_file=str(policy), cache_dir=data)
    store.reload()
    delivery = Delivery(DeliverySettings(data_dir=data), device=Device(id="dev1", hostname="pc"),
                        store=store)
    delivery.keys._secrets = keys._secrets
    return delivery


def test_delivery_accepts_a_code_once_and_records_it(tmp_path: Path) -> None:
    delivery = _delivery(tmp_path)
    code = ac.issue(KEY, "dev1", "unlock", 15, counter=3)
    assert not delivery.verify_code("usb", code)  # bound to its channel
    assert delivery.verify_code("unlock", code)
    assert not delivery.verify_code("unlock", code)  # single use
    used = [k for k in ("approval-code-used:" + c.key() for c in [
        ac.match(KEY, "dev1", "unlock", code)] if c is not None)]
    assert used and delivery.journal.get_meta(used[0]) is not None
    assert base64.b64encode(KEY).decode() not in delivery.journal.get_meta(used[0])


def test_an_accepted_code_is_journaled_as_spent_by_its_id_never_the_code(
        tmp_path: Path) -> None:
    delivery = _delivery(tmp_path)
    code = ac.issue(KEY, "dev1", "usb", 30, counter=42)
    cid = ac.match(KEY, "dev1", "usb", code)
    assert cid is not None
    assert not delivery.verify_code("print", code)  # refused: nothing spent
    assert delivery.verify_code("usb", code)
    assert not delivery.verify_code("usb", code)  # refused the second time: one spend only
    bodies = [r.body for r in delivery.journal.records()]
    spent = [json.loads(b) for b in bodies if '"APPROVAL_CODE_SPENT"' in b]
    assert len(spent) == 1
    assert spent[0]["channel"] == "system" and spent[0]["device"]["id"] == "dev1"
    assert ac.CodeId.from_detail(spent[0]["detail"]) == cid
    assert spent[0]["detail"]["code_counter"] == 42
    assert not any(code in b or code[4:] in b for b in bodies)


def test_code_ids_in_spent_events_are_checked() -> None:
    cid = ac.CodeId("usb", 5_833_333, 6, 7)
    assert ac.CodeId.from_detail(cid.detail()) == cid
    assert cid.valid_until() - cid.valid_from() == (6 + 2) * ac.SLOT_S
    for broken in ({**cid.detail(), "code_slot": "5833333"}, {**cid.detail(), "code_slots": 0},
                   {**cid.detail(), "code_counter": True}, {**cid.detail(), "code_channel": "x"},
                   {"code_channel": "usb"}):
        assert ac.CodeId.from_detail(broken) is None


def test_delivery_stops_checking_after_many_wrong_codes(tmp_path: Path) -> None:
    delivery = _delivery(tmp_path)
    for _ in range(10):
        assert not delivery.verify_code("unlock", "000000000000")
    assert not delivery.verify_code("unlock", ac.issue(KEY, "dev1", "unlock", 15, counter=4))
