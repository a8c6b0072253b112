"""Table-driven tests of CN_RESIDENT_ID detection through the engine (positive and negative)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import pytest
from stdnum.cn import ric

from guard.scan.engine import Scanner

SCANNER = Scanner(key=b"test-key")


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in SCANNER.scan_text(text)]


def with_check(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


ID_X = "11010519491231002X"
ID_D = with_check("44030519900307123")  # 440305199003071236
BAD_DATE = with_check("44030519901307123")  # month 13, right check char
BAD_PROVINCE = with_check("99030519900307123")
UNKNOWN_COUNTY = with_check("11999919900307123")  # Beijing, no such county

POSITIVE = [
    ("身份证号" + ID_X + "，", ID_X),
    ("身份证号：" + ID_X.lower(), ID_X.lower()),
    ("证件号码１１０１０５１９４９１２３１００２Ｘ。", "１１０１０５１９４９１２３１００２Ｘ"),
    ("证件号码１１０１０５１９４９１２３１００２ｘ", "１１０１０５１９４９１２３１００２ｘ"),
    ('"' + ID_D + '"', ID_D),
    ("“" + ID_D + "”", ID_D),
    ("（" + ID_D + "）", ID_D),
    ("[" + ID_D + "]", ID_D),
    ("张三," + ID_D + ",男,汉族", ID_D),
    ("张三\t" + ID_D + "\t男", ID_D),
    ("'" + ID_D, ID_D),
    ("id_no=" + ID_D + "&type=1", ID_D),
    ("customer.idno=" + ID_D + ";", ID_D),
    ("ID" + ID_D, ID_D),
    ("客户" + ID_D + "办理开户", ID_D),
    ("证件号 110105 19491231 002X", "110105 19491231 002X"),
    ("证件号 1101 0519 4912 3100 2X。", "1101 0519 4912 3100 2X"),
    ("身份证号：110105491231002", "110105491231002"),  # legacy 15 digits with a label
    ("身份证号：" + UNKNOWN_COUNTY, UNKNOWN_COUNTY),  # province right, county unknown
    ("身份证\u3000" + ID_D, ID_D),
    ("张三_" + ID_X + ".pdf", ID_X),  # a scan saved under the customer's name and number
    ("身份证_" + ID_D + "_正面.jpg", ID_D),
]

NEGATIVE = [
    ID_D[:-1] + str((int(ID_D[-1]) + 1) % 10),  # wrong check digit
    "身份证号：" + ID_X[:-1] + "3",
    "身份证号：" + BAD_DATE,
    "身份证号：" + BAD_PROVINCE,
    "110105491231002",  # legacy form without a label
    "1234" + ID_D,  # inside a longer digit run
    ID_D + "5678",
    "ABC" + ID_D,  # glued to a code
    ID_D + "KQ",
    "流水号" + ID_D,  # a serial-number label right before it
    "ref_" + ID_D,  # part of a code-like name
    ID_D + "_v2",
    "金额" + ID_D + ".00元",
]


@pytest.mark.parametrize(("text", "span"), POSITIVE)
def test_found(text: str, span: str) -> None:
    assert found(text) == [("CN_RESIDENT_ID", span)]


@pytest.mark.parametrize("text", NEGATIVE)
def test_not_found(text: str) -> None:
    assert [t for t, _ in found(text) if t == "CN_RESIDENT_ID"] == []


def test_label_raises_confidence_and_unknown_county_lowers_it() -> None:
    bare = SCANNER.scan_text(ID_D)[0].score
    labelled = SCANNER.scan_text("身份证号：" + ID_D)[0].score
    county = SCANNER.scan_text(UNKNOWN_COUNTY)[0].score
    assert labelled > bare > county >= 0.5


def test_finding_fields() -> None:
    (f,) = SCANNER.scan_text("身份证号" + ID_X)
    assert (f.start, f.end, f.masked, str(f.category)) == (4, 22, "110***********002X", "C2")
    other = Scanner(key=b"other-key").scan_text(ID_X)[0]
    assert len(f.hash) == 64 and f.hash != other.hash
    # the hash is of the normalised value: full-width and lower-case forms hash the same
    fw = SCANNER.scan_text("１１０１０５１９４９１２３１００２ｘ")[0]
    assert fw.hash == f.hash and fw.masked == f.masked


def test_the_region_index_answers_as_stdnums_birth_place_lookup() -> None:
    # the index of stdnum's county table against stdnum's own walk: every region code in the
    # table (and codes next to them that are not), in every year where an answer could change
    from stdnum.exceptions import ValidationError

    from guard.scan.detectors import resident_id

    table = resident_id._county_table()
    assert table is not None and len(table) > 3000
    years: dict[str, set[int]] = {}
    for n, (region, counties) in enumerate(table.items()):
        if "[" not in counties and n % 4:
            continue  # a county without years answers the same in every year: a sample of them
        edges = {1890, 1949, 2026}
        for bound in re.findall(r"\d{4}", counties):
            edges |= {int(bound) - 1, int(bound), int(bound) + 1}
        years[region] = edges
    for region in list(table)[::50]:
        years[str(int(region) + 1).zfill(6)] = {1990}  # often a code that is not in the table
    years["990101"] = years["110000"] | {1990}

    def stdnum_says(region_and_year: str) -> bool:
        try:
            ric.get_birth_place(region_and_year + "01010000")
        except (ValidationError, KeyError):
            return False
        return True

    checked = 0
    for region, edges in years.items():
        for year in sorted(edges):
            key = f"{region}{year:04d}"
            assert resident_id._place_known.__wrapped__(key) == stdnum_says(key), key
            checked += 1
    assert checked > 10000


def test_the_county_table_is_read_without_importing_stdnum() -> None:
    # stdnum's package imports ssl and pydoc: the scan's start-up reads its table file directly
    code = ("import sys; from guard.scan.detectors import resident_id; "
            "t = resident_id._county_table(); "
            "print(len(t or ()), sorted(m for m in sys.modules if m.split('.')[0] == 'stdnum'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    size, modules = out.stdout.split(" ", 1)
    assert int(size) > 3000 and modules.strip() == "[]"


def test_the_check_character_is_stdnums() -> None:
    from guard.scan.detectors.resident_id import check_character

    rng = random.Random(5)
    for _ in range(20000):
        value = "".join(rng.choice("0123456789") for _ in range(17)) + rng.choice("0123456789X")
        assert check_character(value) == ric.calc_check_digit(value)


def test_a_county_table_laid_out_otherwise_falls_back_to_stdnums_walk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from guard.scan.detectors import resident_id

    monkeypatch.setattr(resident_id, "_county_table", lambda: None)
    assert resident_id._place_known.__wrapped__("1101051949") is True
    assert resident_id._place_known.__wrapped__("1103001990") is False  # no such county
