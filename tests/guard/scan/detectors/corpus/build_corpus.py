"""Builds the labelled teller-text corpus used to score the detection engine.

    .venv/bin/python tests/guard/scan/detectors/corpus/build_corpus.py [--seed N] [--out PATH]

Every identifier is synthetic but valid where a real one would be (GB 11643 check characters,
real region codes from python-stdnum's table, real card BINs from resources/data/cn-card-bins.csv
with a Luhn check digit, mainland mobile number plan). Labels say what a compliance officer calls
customer data: the span covers the identifier from its first to its last character, inner spaces
or hyphens and a +86/0086/86 prefix included, never the surrounding quotes, brackets or the
Excel apostrophe. Negatives (serial numbers, timestamps, amounts, order and tracking numbers,
wrong check digits, Luhn-by-chance numbers outside a card context, invalid mobile prefixes,
landlines, dates, versions, digits inside longer digit runs) carry no label.

Each JSONL record: {"text", "entities": [{"type", "start", "end"}], "case", "hard"}.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import stdnum
from stdnum import luhn
from stdnum.cn import ric, uscc

ROOT = Path(__file__).resolve().parents[5]
OUT = Path(__file__).resolve().parent / "teller_corpus.jsonl"

FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}

NAMES = ("张伟 王芳 李娜 刘洋 陈静 杨帆 赵敏 黄磊 周杰 "
         "吴倩 徐明 孙丽 马超 朱婷 胡斌 郭强 林晓 何雪").split()
BUSINESS = "开户 销户 挂失 补卡 转账 取款 存款 理财签约 密码重置 信息变更 代发工资 大额取现".split()
MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 147 150 151 152 153 155 156 157 158 159 "
    "166 170 171 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 193 195 "
    "196 198 199"
).split()
BAD_MOBILE_PREFIXES = ("100 101 102 103 104 105 106 107 108 109 110 111 112 114 116 "
                       "120 121 122 123 124 125 126 127 128 129").split()
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "gmail.com", "icbc.com.cn",
                 "outlook.com"]


def _regions() -> list[str]:
    """Six-digit county codes from python-stdnum's region table (the validator's own source)."""
    path = Path(stdnum.__file__).parent / "cn" / "loc.dat"
    codes: list[str] = []
    province = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            province = line.split()[0]
        else:
            part = line.split()[0]
            if not part.endswith("00"):
                codes.append(province + part)
    return codes


def _bins() -> list[tuple[str, str, int]]:
    with (ROOT / "resources" / "data" / "cn-card-bins.csv").open(encoding="utf-8") as handle:
        return [(row["bin"], row["type"], int(row["length"])) for row in csv.DictReader(handle)]


REGIONS = _regions()
BINS = _bins()
DEBIT_BINS = [b for b in BINS if b[1] == "DC" and b[2] in (16, 19) and len(b[0]) >= 6]
CARD_BINS = [b for b in BINS if b[1] in ("DC", "CC") and b[2] in (16, 19) and len(b[0]) >= 6]


@dataclass
class Text:
    """A text under construction with the labelled spans of its identifiers."""

    parts: list[str] = field(default_factory=list)
    entities: list[dict[str, object]] = field(default_factory=list)

    def add(self, plain: str) -> Text:
        self.parts.append(plain)
        return self

    def ent(self, kind: str, value: str) -> Text:
        start = sum(len(p) for p in self.parts)
        self.parts.append(value)
        self.entities.append({"type": kind, "start": start, "end": start + len(value)})
        return self

    @property
    def text(self) -> str:
        return "".join(self.parts)


# ---------------------------------------------------------------- identifiers


def resident_id(r: random.Random, want_x: bool | None = None) -> str:
    for _ in range(1000):
        body = (r.choice(REGIONS) + f"{r.randint(1940, 2008)}{r.randint(1, 12):02d}"
                f"{r.randint(1, 28):02d}{r.randint(0, 999):03d}")
        check = ric.calc_check_digit(body + "0")
        # the region must have existed in the birth year, as python-stdnum checks
        if (want_x is None or (check == "X") == want_x) and ric.is_valid(body + check):
            return body + check
    raise RuntimeError("no resident id with the wanted check character")


def bad_resident_id(r: random.Random) -> str:
    good = resident_id(r, want_x=False)
    wrong = r.choice([c for c in "0123456789X" if c != good[-1]])
    return good[:-1] + wrong


def legacy_id(r: random.Random) -> str:
    return (resident_id(r)[:6] + f"{r.randint(40, 84):02d}{r.randint(1, 12):02d}"
            f"{r.randint(1, 28):02d}{r.randint(0, 999):03d}")


def card(r: random.Random, length: int | None = None, debit: bool = False) -> str:
    pool = DEBIT_BINS if debit else CARD_BINS
    if length is not None:
        pool = [b for b in pool if b[2] == length]
    bin_, _, size = r.choice(pool)
    body = bin_ + "".join(r.choice("0123456789") for _ in range(size - len(bin_) - 1))
    return body + luhn.calc_check_digit(body)


def card_failing_luhn(r: random.Random) -> str:
    good = card(r, debit=True)
    wrong = r.choice([c for c in "0123456789" if c != good[-1]])
    return good[:-1] + wrong


def foreign_card(r: random.Random) -> str:
    prefix = r.choice(["4" + "".join(r.choice("0123456789") for _ in range(5)),
                       str(r.randint(51, 55)) + "".join(r.choice("0123456789") for _ in range(4))])
    body = prefix + "".join(r.choice("0123456789") for _ in range(15 - len(prefix)))
    return body + luhn.calc_check_digit(body)


def grouped(number: str, sep: str = " ") -> str:
    return sep.join(number[i:i + 4] for i in range(0, len(number), 4))


def mobile(r: random.Random) -> str:
    return r.choice(MOBILE_PREFIXES) + f"{r.randint(0, 99999999):08d}"


def mobile_formatted(r: random.Random) -> str:
    m = mobile(r)
    style = r.choice(["plain", "dash", "space", "+86", "+86 ", "0086", "86", "+86-", "+86 344"])
    if style == "dash":
        return f"{m[:3]}-{m[3:7]}-{m[7:]}"
    if style == "space":
        return f"{m[:3]} {m[3:7]} {m[7:]}"
    if style == "+86 344":
        return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    if style in ("+86", "0086", "86"):
        return style + m
    if style in ("+86 ", "+86-"):
        return style + m
    return m


def bad_mobile(r: random.Random) -> str:
    return r.choice(BAD_MOBILE_PREFIXES) + f"{r.randint(0, 99999999):08d}"


def email(r: random.Random) -> str:
    user = r.choice(["zhang.wei", "wangfang88", "lina_2020", "liuyang", "chenjing.sh", "yf1990"])
    return f"{user}{r.randint(1, 999)}@{r.choice(EMAIL_DOMAINS)}"


def uscc_code(r: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "91" + r.choice(REGIONS) + "".join(r.choice(alphabet) for _ in range(9))
    return body + uscc.calc_check_digit(body)


def passport(r: random.Random) -> str:
    return r.choice("EG") + f"{r.randint(10000000, 99999999)}"


def digits(r: random.Random, n: int, first: str = "123456789") -> str:
    return r.choice(first) + "".join(r.choice("0123456789") for _ in range(n - 1))


def luhn_by_chance(r: random.Random, n: int) -> str:
    while True:
        value = digits(r, n)
        if luhn.is_valid(value) and not any(value.startswith(b[0]) for b in BINS):
            return value


def serial(r: random.Random, n: int | None = None) -> str:
    n = n or r.randint(16, 22)
    return f"2026{r.randint(1, 12):02d}{r.randint(1, 28):02d}" + digits(r, n - 8, "0123456789")


def timestamp14(r: random.Random) -> str:
    return (f"2026{r.randint(1, 12):02d}{r.randint(1, 28):02d}{r.randint(8, 18):02d}"
            f"{r.randint(0, 59):02d}{r.randint(0, 59):02d}")


def landline(r: random.Random) -> str:
    area = r.choice(["010", "021", "022", "023", "020", "0755", "0571", "0512", "0731", "028"])
    local = digits(r, 8 if len(area) == 3 else r.choice([7, 8]), "2345678")
    return f"{area}-{local}"


def amount(r: random.Random) -> str:
    value = r.randint(100, 99999999) + r.randint(0, 99) / 100
    return r.choice([f"{value:,.2f}", f"{value:.2f}", f"{int(value)}"])


def fw(value: str) -> str:
    return "".join(FULL_WIDTH.get(c, c) for c in value)


def name(r: random.Random) -> str:
    return r.choice(NAMES)


# ---------------------------------------------------------------- templates
# Each template returns (Text, hard?) for one teller text.

Template = Callable[[random.Random], tuple[Text, bool]]


def t_id_glued(r: random.Random) -> tuple[Text, bool]:
    ctx = r.choice(["身份证号", "身份证号码", "证件号码", "公民身份号码", "身份证"])
    end = r.choice(["，", "。", "；", "的客户", "办理", "已核实"])
    return Text().add(f"客户{name(r)}{ctx}").ent("CN_RESIDENT_ID", resident_id(r)).add(
        f"{end}{r.choice(BUSINESS)}业务。"), False


def t_id_plain_sentence(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"{name(r)}（").ent("CN_RESIDENT_ID", resident_id(r)).add(
        f"）于今日办理{r.choice(BUSINESS)}。"), False


def t_id_lower_x(r: random.Random) -> tuple[Text, bool]:
    value = resident_id(r, want_x=True).lower()
    return Text().add("证件号：").ent("CN_RESIDENT_ID", value).add("，请复核。"), True


def t_id_fullwidth(r: random.Random) -> tuple[Text, bool]:
    value = fw(resident_id(r, want_x=r.random() < 0.5))
    return Text().add("身份证号码").ent("CN_RESIDENT_ID", value).add("，客户已签字确认。"), True


def t_id_quoted(r: random.Random) -> tuple[Text, bool]:
    o, c = r.choice([("“", "”"), ('"', '"'), ("「", "」"), ("『", "』"), ("【", "】"), ("[", "]"),
                     ("(", ")"), ("'", "'")])
    return Text().add(f"请核对证件号{o}").ent("CN_RESIDENT_ID", resident_id(r)).add(
        f"{c}是否与影像一致"), False


def t_id_wrong_check(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"身份证号{bad_resident_id(r)}校验失败，请客户重新提供证件。"), True


def t_id_legacy(r: random.Random) -> tuple[Text, bool]:
    return Text().add("客户持一代身份证，号码").ent("CN_RESIDENT_ID", legacy_id(r)).add(
        "，已提示换领。"), True


def t_card_plain(r: random.Random) -> tuple[Text, bool]:
    ctx = r.choice(["卡号", "银行卡号", "借记卡", "账号", "转入卡号", "信用卡号"])
    return Text().add(f"{name(r)}{ctx}").ent("BANK_CARD", card(r)).add(
        f"，{r.choice(BUSINESS)}金额{amount(r)}元。"), False


def t_card_grouped(r: random.Random) -> tuple[Text, bool]:
    sep = r.choice([" ", "-"])
    value = grouped(card(r, length=r.choice([16, 19])), sep)
    return Text().add("客户卡号：").ent("BANK_CARD", value).add(" 已挂失。"), False


def t_card_nocontext(r: random.Random) -> tuple[Text, bool]:
    value = card(r)
    return Text().add(f"{name(r)} ").ent("BANK_CARD", value).add(f" {r.choice(BUSINESS)}"), False


def t_card_apostrophe(r: random.Random) -> tuple[Text, bool]:
    t = Text().add("姓名,卡号,手机\r\n" if r.random() < 0.5 else "姓名,卡号,手机\n")
    t.add(f"{name(r)},'").ent("BANK_CARD", card(r)).add(",'").ent("CN_MOBILE", mobile(r)).add("\n")
    return t, True


def t_card_failing_luhn_ctx(r: random.Random) -> tuple[Text, bool]:
    ctx = r.choice(["借记卡号", "银行卡号", "卡号：", "储蓄卡"])
    return Text().add(f"客户{ctx}").ent("BANK_CARD", card_failing_luhn(r)).add(
        "，系统提示卡号校验异常但卡片真实有效。"), True


def t_card_failing_luhn_noctx(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"批次号 {card_failing_luhn(r)} 已处理完毕。"), True


def t_card_foreign(r: random.Random) -> tuple[Text, bool]:
    value = foreign_card(r)
    if r.random() < 0.5:
        value = grouped(value, r.choice([" ", "-", ""]))
    return Text().add("Customer paid with card ").ent("BANK_CARD", value).add(
        ", please verify the cardholder name."), False


def t_card_fullwidth(r: random.Random) -> tuple[Text, bool]:
    return Text().add("卡号").ent("BANK_CARD", fw(card(r))).add("（客户手写）"), True


def t_card_19_grouped_433(r: random.Random) -> tuple[Text, bool]:
    value = grouped(card(r, length=19), r.choice([" ", "-"]))
    return Text().add("借记卡 ").ent("BANK_CARD", value).add(" 补卡申请已受理"), False


def t_mobile_formats(r: random.Random) -> tuple[Text, bool]:
    ctx = r.choice(["手机", "手机号", "联系电话", "电话", "预留手机号", "mobile:"])
    return Text().add(f"{name(r)}{ctx}").ent("CN_MOBILE", mobile_formatted(r)).add(
        r.choice(["，已回访。", "。", "（本人）", " 请回电"])), False


def t_mobile_glued(r: random.Random) -> tuple[Text, bool]:
    return Text().add("请联系客户").ent("CN_MOBILE", mobile(r)).add("确认转账用途"), False


def t_mobile_fullwidth(r: random.Random) -> tuple[Text, bool]:
    return Text().add("手机：").ent("CN_MOBILE", fw(mobile(r))).add("。"), True


def t_mobile_bad_prefix(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"客户编号{bad_mobile(r)}，{r.choice(BUSINESS)}。"), True


def t_landline(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"网点电话{landline(r)}，传真{landline(r)}，客服热线95588。"), False


def t_landline_and_mobile(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"办公电话：{landline(r)}；手机：").ent("CN_MOBILE", mobile(r)).add(
        "。"), False


def t_serial(r: random.Random) -> tuple[Text, bool]:
    ctx = r.choice(["流水号", "交易流水", "交易流水号", "业务流水号", "柜员流水", "serial no."])
    return Text().add(f"{ctx}{serial(r)}，{r.choice(BUSINESS)}成功，金额{amount(r)}元。"), True


def t_serial_luhn(r: random.Random) -> tuple[Text, bool]:
    n = r.choice([16, 19])
    ctx = r.choice(["流水号：", "交易流水号", "订单号", "凭证号", "业务编号", "ref="])
    return Text().add(f"{ctx}{luhn_by_chance(r, n)} 已冲正。"), True


def t_timestamp(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"[{timestamp14(r)}] 交易完成，耗时{r.randint(10, 900)}ms"), False


def t_amount(r: random.Random) -> tuple[Text, bool]:
    return Text().add(
        f"本日现金收入{amount(r)}元，支出{amount(r)}元，"
        f"轧差{r.randint(10**10, 10**12)}.00分。"), False


def t_order_tracking(r: random.Random) -> tuple[Text, bool]:
    kind = r.choice(["订单号", "快递单号", "运单号", "订单编号"])
    if kind in ("快递单号", "运单号"):
        value = r.choice([f"SF{digits(r, 13)}", f"YT{digits(r, 13)}", f"JD{digits(r, 15)}",
                          f"75{digits(r, 12, '0123456789')}", digits(r, 12)])
    else:
        value = f"{timestamp14(r)}{digits(r, 6, '0123456789')}"
    return Text().add(f"{kind}：{value}，客户投诉未收到卡片。"), True


def t_dates_versions(r: random.Random) -> tuple[Text, bool]:
    return Text().add(
        f"系统版本 v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}，"
        f"build 10.0.19045.{r.randint(1000, 9999)}，上线日期2026-{r.randint(1, 12):02d}-"
        f"{r.randint(1, 28):02d}，{r.randint(2020, 2026)}年{r.randint(1, 12)}月"
        f"{r.randint(1, 28)}日。"
    ), False


def t_digits_in_run(r: random.Random) -> tuple[Text, bool]:
    inner = r.choice([mobile(r), resident_id(r, want_x=False), card(r)])
    pre = digits(r, r.randint(2, 5), "0123456789")
    post = digits(r, r.randint(2, 5), "0123456789")
    return Text().add(f"批量文件记录号{pre}{inner}{post}处理成功"), True


def t_kv_log(r: random.Random) -> tuple[Text, bool]:
    t = Text().add(f"2026-11-24 10:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}."
                   f"{r.randint(0, 999):03d} INFO [core-txn] txn_id={serial(r, 20)} ")
    t.add("id_no=").ent("CN_RESIDENT_ID", resident_id(r)).add(" card_no=").ent("BANK_CARD", card(r))
    t.add(" mobile=").ent("CN_MOBILE", mobile(r)).add(f" amt={amount(r)} rc=0000")
    return t, False


def t_kv_log_negatives(r: random.Random) -> tuple[Text, bool]:
    return Text().add(
        f"2026-11-24T09:{r.randint(0, 59):02d}:00+08:00 WARN trace_id={digits(r, 19)} "
        f"session={digits(r, 16)} ts={timestamp14(r)} seq={serial(r)} cost={r.randint(1, 999)}ms "
        f"ver=3.{r.randint(0, 9)}.{r.randint(0, 99)}"), True


def t_json(r: random.Random) -> tuple[Text, bool]:
    t = Text().add('{"custName":"' + name(r) + '","idNo":"').ent("CN_RESIDENT_ID", resident_id(r))
    t.add('","cardNo":"').ent("BANK_CARD", card(r)).add('","phone":"').ent("CN_MOBILE", mobile(r))
    t.add(f'","serialNo":"{serial(r)}","amount":{amount(r).replace(",", "")}}}')
    return t, False


def t_csv(r: random.Random) -> tuple[Text, bool]:
    sep = r.choice([",", "\t"])
    nl = r.choice(["\n", "\r\n"])
    t = Text().add(sep.join(["序号", "姓名", "证件号码", "卡号", "手机", "交易流水", "金额"]) + nl)
    for i in range(r.randint(1, 3)):
        t.add(f"{i + 1}{sep}{name(r)}{sep}").ent("CN_RESIDENT_ID", resident_id(r)).add(sep)
        t.ent("BANK_CARD", card(r)).add(sep).ent("CN_MOBILE", mobile(r))
        t.add(f"{sep}{serial(r)}{sep}{amount(r).replace(',', '')}{nl}")
    return t, False


def t_csv_quoted(r: random.Random) -> tuple[Text, bool]:
    t = Text().add('"姓名","身份证","银行卡"\n"' + name(r) + '","')
    t.ent("CN_RESIDENT_ID", resident_id(r)).add('","').ent("BANK_CARD", grouped(card(r))).add('"\n')
    return t, False


def t_english(r: random.Random) -> tuple[Text, bool]:
    t = Text().add("Customer ID No. ").ent("CN_RESIDENT_ID", resident_id(r))
    t.add(", phone ").ent("CN_MOBILE", mobile_formatted(r)).add(", e-mail ").ent("EMAIL", email(r))
    t.add(f". Ticket #{digits(r, 8)} opened at {r.randint(8, 17)}:30.")
    return t, False


def t_email(r: random.Random) -> tuple[Text, bool]:
    return Text().add("客户邮箱").ent("EMAIL", email(r)).add("，对账单将按月发送。"), False


def t_uscc(r: random.Random) -> tuple[Text, bool]:
    return Text().add("对公客户统一社会信用代码").ent("CN_USCC", uscc_code(r)).add(
        "，开立基本存款账户。"), False


def t_passport(r: random.Random) -> tuple[Text, bool]:
    return Text().add("外籍客户改用护照，护照号码").ent("CN_PASSPORT", passport(r)).add(
        "，已联网核查。"), True


def t_prose(r: random.Random) -> tuple[Text, bool]:
    return Text().add(r.choice([
        "关于加强柜面业务风险防控的通知：各网点应严格执行客户身份识别制度，对大额现金业务进行登记。",
        "营业终了，现金尾箱与系统账务核对一致，重要空白凭证领用、使用、作废登记完整。",
        "客户来电咨询理财产品赎回规则，已告知风险等级与到账时间，无异常情况。",
        "The branch will close at 16:30 on 2026-12-31 for the year-end settlement.",
    ]) + f"联系人分机{r.randint(8000, 8999)}。"), False


def t_mixed_hard(r: random.Random) -> tuple[Text, bool]:
    t = Text().add(f"交易流水号{serial(r, 19)}，客户").ent("CN_MOBILE", mobile_formatted(r))
    t.add(f"于{timestamp14(r)}转入卡号").ent("BANK_CARD", grouped(card(r, length=19)))
    t.add(f"，订单号{luhn_by_chance(r, 16)}。")
    return t, True


def t_multi_same_line(r: random.Random) -> tuple[Text, bool]:
    t = Text().add("客户资料：").ent("CN_RESIDENT_ID", resident_id(r)).add("/").ent(
        "CN_MOBILE", mobile(r)).add("/").ent("BANK_CARD", card(r))
    return t, True


def t_id_spaced(r: random.Random) -> tuple[Text, bool]:
    value = resident_id(r)
    sep = r.choice([" ", "-"])
    spaced = f"{value[:6]}{sep}{value[6:14]}{sep}{value[14:]}"
    return Text().add("身份证 ").ent("CN_RESIDENT_ID", spaced).add(" 已核验"), True


def t_id_xml_url(r: random.Random) -> tuple[Text, bool]:
    if r.random() < 0.5:
        t = Text().add("<cert><type>01</type><idNo>").ent("CN_RESIDENT_ID", resident_id(r))
        return t.add("</idNo><tel>").ent("CN_MOBILE", mobile(r)).add("</tel></cert>"), True
    t = Text().add("GET /api/customer?certNo=").ent("CN_RESIDENT_ID", resident_id(r))
    return t.add("&mobile=").ent("CN_MOBILE", mobile(r)).add(f"&_={digits(r, 13)} HTTP/1.1"), True


def t_masked_values(r: random.Random) -> tuple[Text, bool]:
    m, c, i = mobile(r), card(r), resident_id(r)
    return Text().add(f"短信已发送至{m[:3]}****{m[-4:]}，卡号{c[:6]}{'*' * (len(c) - 10)}{c[-4:]}，"
                      f"证件{i[:3]}{'*' * 11}{i[-4:]}。"), True


def t_odd_spaces(r: random.Random) -> tuple[Text, bool]:
    sep = r.choice(["\u00a0", "\u3000", "  "])
    number = card(r, length=16)
    value = sep.join(number[i:i + 4] for i in range(0, 16, 4))
    return Text().add("卡号：").ent("BANK_CARD", value).add("（复印件）"), True


def t_mobile_more_formats(r: random.Random) -> tuple[Text, bool]:
    m = mobile(r)
    value = r.choice([f"+86 {m[:3]}-{m[3:7]}-{m[7:]}", f"＋86{m}", f"0086-{m}",
                      f"+86-{m[:3]}-{m[3:7]}-{m[7:]}", f"0086 {m[:3]} {m[3:7]} {m[7:]}"])
    return Text().add("Tel: ").ent("CN_MOBILE", value).add(" (customer)"), True


def t_mobile_list(r: random.Random) -> tuple[Text, bool]:
    t = Text().add("紧急联系人：").ent("CN_MOBILE", mobile(r)).add("/").ent("CN_MOBILE", mobile(r))
    return t.add("、").ent("CN_MOBILE", mobile(r)).add("。"), True


def t_landline_compact(r: random.Random) -> tuple[Text, bool]:
    area = r.choice(["010", "021", "020", "0755", "0571", "025"])
    local = digits(r, 8, "2345678")
    hotline = "400" + digits(r, 7, "0123456789")
    return Text().add(f"单位电话{area}{local}，总机{area}-{local[:4]}，热线{hotline}"), True


def t_timestamp_ms(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"tx_time={timestamp14(r)}{r.randint(0, 999):03d} elapsed={r.randint(1, 9)}s "
                      f"batch={timestamp14(r)}{digits(r, 4, '0123456789')}"), True


def t_serial_bin_luhn(r: random.Random) -> tuple[Text, bool]:
    bin_ = r.choice(CARD_BINS)[0]
    while True:
        value = bin_ + digits(r, r.choice([16, 19]) - len(bin_), "0123456789")
        if luhn.is_valid(value):
            break
    ctx = r.choice(["交易流水号", "流水号：", "订单号", "快递单号"])
    return Text().add(f"{ctx}{value}，状态：成功"), True


def t_bare_luhn(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"2026-11-24 11:02:03 DEBUG req {luhn_by_chance(r, r.choice([16, 19]))} "
                      f"resp {luhn_by_chance(r, 16)} ok"), True


def t_wrong_check_bare(r: random.Random) -> tuple[Text, bool]:
    return Text().add(f"导入失败记录：{bad_resident_id(r)}，原因：格式错误"), True


def t_failing_luhn_grouped_ctx(r: random.Random) -> tuple[Text, bool]:
    value = card_failing_luhn(r)
    return Text().add(r.choice(["Debit card no. ", "储蓄卡号码：", "客户提供的银行卡 "])).ent(
        "BANK_CARD", grouped(value, r.choice([" ", "-"]))).add(" 请核实"), True


def t_bank_account(r: random.Random) -> tuple[Text, bool]:
    value = r.choice(["1100", "3100", "4400", "1200"]) + digits(r, r.randint(13, 17), "0123456789")
    return Text().add(r.choice(["对公账号：", "收款账号", "单位结算账户账号 "])).ent(
        "CN_BANK_ACCOUNT", value).add("，户名：某某贸易有限公司"), True

def t_file_names(r: random.Random) -> tuple[Text, bool]:
    t = Text().add(f"U盘写入：D:\\客户资料\\{name(r)}_").ent("CN_RESIDENT_ID", resident_id(r))
    t.add("_身份证正面.jpg；回访录音_").ent("CN_MOBILE", mobile(r)).add(".mp3；")
    t.add(f"IMG_{timestamp14(r)[:8]}_{r.randint(100000, 235959)}.jpg；wxid_{mobile(r)}")
    return t, True

def t_email_fullwidth(r: random.Random) -> tuple[Text, bool]:
    value = email(r).replace("@", "＠")  # a Chinese input method in full-width mode
    return Text().add("客户邮箱：").ent("EMAIL", value).add("（全角输入）"), True


TEMPLATES: list[tuple[Template, int]] = [
    (t_id_glued, 14), (t_id_plain_sentence, 6), (t_id_lower_x, 8), (t_id_fullwidth, 8),
    (t_id_quoted, 10), (t_id_wrong_check, 10), (t_id_legacy, 4),
    (t_card_plain, 12), (t_card_grouped, 12), (t_card_nocontext, 6), (t_card_apostrophe, 8),
    (t_card_failing_luhn_ctx, 10), (t_card_failing_luhn_noctx, 6), (t_card_foreign, 5),
    (t_card_fullwidth, 5), (t_card_19_grouped_433, 6),
    (t_mobile_formats, 24), (t_mobile_glued, 6), (t_mobile_fullwidth, 5), (t_mobile_bad_prefix, 10),
    (t_landline, 8), (t_landline_and_mobile, 6),
    (t_serial, 14), (t_serial_luhn, 14), (t_timestamp, 6), (t_amount, 6), (t_order_tracking, 10),
    (t_dates_versions, 6), (t_digits_in_run, 10), (t_kv_log, 8), (t_kv_log_negatives, 8),
    (t_json, 8), (t_csv, 8), (t_csv_quoted, 5), (t_english, 8), (t_email, 5), (t_uscc, 5),
    (t_passport, 4), (t_prose, 6), (t_mixed_hard, 10), (t_multi_same_line, 6),
    (t_id_spaced, 5), (t_id_xml_url, 6), (t_masked_values, 6), (t_odd_spaces, 6),
    (t_mobile_more_formats, 8), (t_mobile_list, 4), (t_landline_compact, 6), (t_timestamp_ms, 5),
    (t_serial_bin_luhn, 8), (t_bare_luhn, 6), (t_wrong_check_bare, 5),
    (t_failing_luhn_grouped_ctx, 6), (t_bank_account, 4), (t_file_names, 6),
    (t_email_fullwidth, 3),
]


def build(seed: int) -> list[dict[str, object]]:
    r = random.Random(seed)
    records: list[dict[str, object]] = []
    for template, count in TEMPLATES:
        for _ in range(count):
            text, hard = template(r)
            records.append({"text": text.text, "entities": text.entities,
                            "case": template.__name__[2:], "hard": hard})
    r.shuffle(records)
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    records = build(args.seed)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    entities = sum(len(rec["entities"]) for rec in records)  # type: ignore[arg-type,misc]
    print(f"{len(records)} texts, {entities} labelled identifiers -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
