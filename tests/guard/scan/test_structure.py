"""Table-driven tests of structural context: the label a document's shape gives each number.

Each case is a document shape tellers have (CSV/TSV, xlsx/docx/HTML tables, aligned reports,
JSON, XML, key=value, prose with the label earlier in the sentence), positive and negative, with
the (type, value) findings expected from the whole document.
"""

from __future__ import annotations

import io
from pathlib import Path

import docx
import openpyxl
import pytest

from guard.scan import structure
from guard.scan.detectors import context
from guard.scan.engine import Scanner

SCANNER = Scanner(key=b"structure-test")
ID = "11010519491231002X"
ID2 = "440304199504193729"
CARD = "6222021234567890128"  # Chinese BIN, Luhn-valid
VOUCHER = "6222021234567890128"  # the same digits in a voucher column: not a card there
VISA = "4111111111111111"  # Luhn-valid, Visa IIN, no Chinese BIN
ACCT = "44028939616529021"  # 17 digits, no issuer: an account only by its label
ACCT2 = "11019558123970"
LEGACY = "110105491231002"  # region 110105, born 1949-12-31, sequence 002
MOBILE = "13812345678"
NEW_BLOCK = "19412345678"  # a block phonenumbers does not know: counts only under a label
PASSPORT = "E12345678"


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, _digits(text[f.start:f.end])) for f in SCANNER.scan_text(text)]


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isalnum())


CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    # -- CSV: the header row labels every row, whatever the delimiter --------------------------
    ("csv header, second row", f"姓名,证件号码,账号,联系电话\n张三,{ID},{ACCT},{MOBILE}\n"
     f"李四,{ID2},{ACCT2},{MOBILE}\n",
     [("CN_RESIDENT_ID", ID), ("CN_BANK_ACCOUNT", ACCT), ("CN_MOBILE", MOBILE),
      ("CN_RESIDENT_ID", ID2), ("CN_BANK_ACCOUNT", ACCT2), ("CN_MOBILE", MOBILE)]),
    ("csv far below the header", "户名,账号\n" + "".join(f"客户{i},{ACCT}\n" for i in range(300)),
     [("CN_BANK_ACCOUNT", ACCT)] * 300),
    ("semicolon", f"户名;对公账号;开户行\n某公司;{ACCT};中国银行\n", [("CN_BANK_ACCOUNT", ACCT)]),
    ("pipe", f"户名|账号\n某公司|{ACCT}\n", [("CN_BANK_ACCOUNT", ACCT)]),
    ("tsv", f"客户姓名\t存折账号\n张三\t{ACCT}\n", [("CN_BANK_ACCOUNT", ACCT)]),
    ("quoted cells with commas", f'备注,户名,账号\n"货款,6月",张三,"{ACCT}"\n',
     [("CN_BANK_ACCOUNT", ACCT)]),
    ("excel apostrophe", f"户名,账号\n张三,'{ACCT}\n", [("CN_BANK_ACCOUNT", ACCT)]),
    ("english headers", f"Name,Payee Acct,Mobile No\nZhang,{ACCT},{MOBILE}\n",
     [("CN_BANK_ACCOUNT", ACCT), ("CN_MOBILE", MOBILE)]),
    ("legacy 15-digit ID column", f"姓名,身份证号\n张三,{LEGACY}\n", [("CN_RESIDENT_ID", LEGACY)]),
    ("new mobile block under a label", f"姓名,手机号码\n张三,{NEW_BLOCK}\n",
     [("CN_MOBILE", NEW_BLOCK)]),
    ("8-digit account column", "户名,账号\n张三,73015522\n", [("CN_BANK_ACCOUNT", "73015522")]),
    ("accounts grouped in fours", "户名,账号\n张三,3381 5173 9179 7192 77\n",
     [("CN_BANK_ACCOUNT", "338151739179719277")]),
    # type resolution: a card number in an account column is a card
    ("card in account column", f"户名,账号\n张三,{CARD}\n", [("BANK_CARD", CARD)]),
    ("ID that passes Luhn under account", f"户名,账号\n张三,{ID2}\n", [("CN_RESIDENT_ID", ID2)]),
    # negatives: a column whose header says serial / voucher / order keeps its numbers out
    ("voucher column", f"凭证号,户名,金额\n{VOUCHER},张三,100.00\n", []),
    ("serial column", f"流水号,姓名\n{VOUCHER},张三\n{VISA},李四\n", []),
    ("order column", f"订单号,商户\n{VOUCHER},某商户\n", []),
    ("legacy ID digits without a label", f"编码,名称\nA1,{LEGACY}\n", []),
    ("new mobile block without a label", f"备注 {NEW_BLOCK} 已处理\n", []),
    ("unlabelled 17 digits", f"代码,说明\n{ACCT},其他\n", []),
    # -- aligned text tables and report printouts (by display column) ---------------------------
    ("report printout",
     "          某银行  老系统客户档案\n"
     "-----------------------------------------------\n"
     "姓名    证件号码            存折账号                开户日期\n"
     "-----------------------------------------------\n"
     f"邓红梅  {LEGACY}     3381 5173 9179 7192 77  20001206\n"
     f"杨淑珍  {ID}  {ACCT}       19930419\n",
     [("CN_RESIDENT_ID", LEGACY), ("CN_BANK_ACCOUNT", "338151739179719277"),
      ("CN_RESIDENT_ID", ID), ("CN_BANK_ACCOUNT", ACCT)]),
    ("report serial column", "户名        交易流水号              金额\n"
     f"张三        {VOUCHER}     200.00\n", []),
    # -- JSON, XML, key=value ------------------------------------------------------------------
    ("json camelCase keys", f'{{"custIdNo": "{LEGACY}", "payerAcctNo": "{ACCT}"}}',
     [("CN_RESIDENT_ID", LEGACY), ("CN_BANK_ACCOUNT", ACCT)]),
    ("json escaped keys", '{"\\u8d26\\u53f7": "' + ACCT + '"}', [("CN_BANK_ACCOUNT", ACCT)]),
    ("json order key", f'{{"orderNo": "{VOUCHER}"}}', []),
    ("xml elements", f"<Record><CertNo>{LEGACY}</CertNo><AcctNo>{ACCT}</AcctNo></Record>",
     [("CN_RESIDENT_ID", LEGACY), ("CN_BANK_ACCOUNT", ACCT)]),
    ("xml voucher element", f"<VoucherNo>{VOUCHER}</VoucherNo>", []),
    ("key=value", f"acct_no={ACCT} id_no={LEGACY}",
     [("CN_BANK_ACCOUNT", ACCT), ("CN_RESIDENT_ID", LEGACY)]),
    ("full-width colon", f"对公账户：{ACCT}", [("CN_BANK_ACCOUNT", ACCT)]),
    # -- records: the row's other fields ------------------------------------------------------
    ("bank name in the row", f"中国银行上海静安支行 {ACCT} 某公司 付款金额 5,152.20 元",
     [("CN_BANK_ACCOUNT", ACCT)]),
    ("bank name, dated serial", "中国银行上海静安支行 20250803123456789 已处理", []),
    ("passport in the preceding field", f"证件类型护照，证件号码{PASSPORT}，有效期至2030年",
     [("CN_PASSPORT", PASSPORT)]),
    ("passport type column", f"姓名,证件类型,证件号码\n张三,护照,{PASSPORT}\n",
     [("CN_PASSPORT", PASSPORT)]),
    ("passport-like code without passport", f"证件类型身份证，编号{PASSPORT}", []),
    ("card in a customer list", f"姓名,号码\n张三,{VISA}\n", [("BANK_CARD", VISA)]),
    ("card in a payment line", f"向{VISA}转账 500 元", [("BANK_CARD", VISA)]),
    ("visa-like serial alone", f"请求 {VISA} 完成", []),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_shapes(name: str, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_shapes_streamed_line_by_line(
    name: str, text: str, expected: list[tuple[str, str]]
) -> None:
    pieces = text.splitlines(keepends=True)
    got = [(f.type, f.start, f.end) for f in SCANNER.scan_chunks(pieces)]
    assert got == [(f.type, f.start, f.end) for f in SCANNER.scan_text(text)]


@pytest.mark.parametrize(("key", "kind"), [
    ("证件号码", context.ID), ("客户证件号码", context.ID), ("收款人账号", context.ACCOUNT),
    ("交易流水号", context.NEG), ("凭证号", context.NEG), ("idNo", context.ID),
    ("CertNo", context.ID), ("acctNo", context.ACCOUNT), ("payee_acct", context.ACCOUNT),
    ("Account No.", context.ACCOUNT), ("mobileNo", context.MOBILE), ("orderNo", context.NEG),
    ("VoucherNo", context.NEG), ("passportNo", context.PASSPORT), ("户名", structure.NAME),
    ("开户行", structure.BANK), ("备注", None), ("address", None),
    ("\\u8bc1\\u4ef6\\u53f7\\u7801", context.ID),
])
def test_classify_key(key: str, kind: str | None) -> None:
    assert structure.classify_key(key) == kind


def _scan_bytes(tmp_path: Path, name: str, data: bytes) -> list[tuple[str, str]]:
    path = tmp_path / name
    path.write_bytes(data)
    result = SCANNER.scan_file(path)
    assert result.error is None, result.error
    return [(f.type, f.masked[-4:]) for f in result.findings]


def test_html_table_header_labels_every_row(tmp_path: Path) -> None:
    page = ("<!DOCTYPE html><html><body><table><thead><tr><th>姓名</th><th>证件号码</th>"
            "<th>账号</th><th>联系电话</th></tr></thead><tbody>\n"
            f"<tr><td>张三</td><td>{ID}</td><td>{ACCT}</td><td>{MOBILE}</td></tr>\n"
            f"<tr>\n<td>李四</td>\n<td>{ID2}</td>\n<td>{ACCT2}</td>\n<td>{MOBILE}</td>\n</tr>\n"
            f"<tr><td>王五</td><td>{LEGACY}</td><td>&nbsp;</td><td></td></tr>"
            "</tbody></table></body></html>")
    for encoding in ("utf-8", "gb18030", "utf-16"):
        assert _scan_bytes(tmp_path, f"list.{encoding}.html", page.encode(encoding)) == [
            ("CN_RESIDENT_ID", ID[-4:]), ("CN_BANK_ACCOUNT", ACCT[-4:]), ("CN_MOBILE", "5678"),
            ("CN_RESIDENT_ID", ID2[-4:]), ("CN_BANK_ACCOUNT", ACCT2[-4:]), ("CN_MOBILE", "5678"),
            ("CN_RESIDENT_ID", LEGACY[-4:]),
        ]


def test_html_voucher_column_and_script_ignored(tmp_path: Path) -> None:
    page = ("<html><head><script>var id='" + ID + "';</script></head><body><table>"
            f"<tr><th>凭证号</th><th>金额</th></tr><tr><td>{VOUCHER}</td><td>1.00</td></tr>"
            "</table></body></html>")
    assert _scan_bytes(tmp_path, "v.html", page.encode()) == []


def test_xlsx_columns_and_title_row(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["某银行 对公客户清单"])
    ws.append(["单位名称", "账号", "凭证号"])
    for _ in range(3):
        ws.append(["某公司", ACCT, VOUCHER])
    ws2 = wb.create_sheet("第二页")
    ws2.append(["姓名", "身份证号"])
    ws2.append(["张三", LEGACY])
    buf = io.BytesIO()
    wb.save(buf)
    assert _scan_bytes(tmp_path, "c.xlsx", buf.getvalue()) == [
        ("CN_BANK_ACCOUNT", ACCT[-4:])] * 3 + [("CN_RESIDENT_ID", LEGACY[-4:])]


def test_docx_table_by_column(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("代发工资明细")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["姓名", "工资卡账号", "流水号"], ["张三", ACCT, VOUCHER],
                             ["李四", ACCT2, VOUCHER]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    buf = io.BytesIO()
    document.save(buf)
    assert _scan_bytes(tmp_path, "p.docx", buf.getvalue()) == [
        ("CN_BANK_ACCOUNT", ACCT[-4:]), ("CN_BANK_ACCOUNT", ACCT2[-4:])]


def test_header_at_the_end_of_one_streamed_piece_labels_the_next() -> None:
    header = "户名,账号\n"
    rows = f"张三,{ACCT}\n" * 3
    got = list(SCANNER.scan_chunks([header, rows]))
    assert [(f.type, f.start) for f in got] == [
        ("CN_BANK_ACCOUNT", len(header) + 3 + i * (len(rows) // 3)) for i in range(3)]


@pytest.mark.parametrize(("text", "expected"), [
    ("统一社会信用代码,账号\n91110108340870889X,44028939616529021\n",
     [("CN_USCC", "91110108340870889X"), ("CN_BANK_ACCOUNT", ACCT)]),
    ("<CreditCode>91110108340870889X</CreditCode>", [("CN_USCC", "91110108340870889X")]),
    # a voucher stock's number range: serials, even on a card BIN with Luhn
    ("凭证种类        起始号码              终止号码              张数\n"
     f"借记卡          017061835341          {CARD}      8\n", []),
])
def test_uscc_with_x_and_voucher_ranges(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected
