"""Context words: which label stands nearest before a candidate, in a character window.

Chinese has no spaces between words, so a label is looked up in a window of characters before
the candidate, not "the previous five words". The nearest label wins (a line such as
`卡号6222… 流水号2026…` labels each number by its own word), and longer words win over the words
they contain (`证件编号` is an identity label even though `编号` alone is a serial-number one).

A positive label (`ID`, `CARD`, ...) counts when no other long number stands between it and the
candidate. A negative label (`NEG`: serial, order, tracking, amount, time ...) counts only when it
is attached to the candidate (a few punctuation characters at most, no line break), so a table
row such as `时间 2026-11-24 客户 110105…`, or a header row ending in 余额 above a row of card
numbers, does not lose its identifier to the negative word.
"""

from __future__ import annotations

import functools
import re
from typing import Final

ID: Final = "ID"
CARD: Final = "CARD"
ACCOUNT: Final = "ACCOUNT"
MOBILE: Final = "MOBILE"
PASSPORT: Final = "PASSPORT"
USCC: Final = "USCC"
EMAIL: Final = "EMAIL"
NEG: Final = "NEG"

WINDOW = 24
"""Characters looked at before a candidate for a label."""
NEG_GAP = 4
"""At most this many characters between a negative label and its candidate."""

WORDS: dict[str, tuple[str, ...]] = {
    ID: (
        "身份证号码", "身份证号", "身份证", "公民身份号码", "身份号码", "居民身份证", "证件号码",
        "证件号", "证件编号", "证件", "身份证件号码", "证照号码", "id card", "idcard", "id no",
        "idno", "id number", "id_no", "id", "sfz", "sfzh", "identity", "身份证编号", "身份证件号",
        "公民身份证", "居民身份证号码", "身份证号码为", "national id", "idCard", "idCardNo",
        "idNo", "certNo", "certId", "cert no", "certificate no",
    ),
    CARD: (
        "卡号", "银行卡号", "银行卡", "借记卡号", "借记卡", "信用卡号", "信用卡", "储蓄卡",
        "储蓄卡号", "付款卡号", "收款卡号", "转入卡号", "转出卡号", "卡", "card no", "cardno",
        "card number", "card_no", "card", "pan", "贷记卡", "准贷记卡", "银联卡", "工资卡", "社保卡",
        "visa", "mastercard", "master card", "amex", "unionpay", "银联", "jcb", "卡片编号",
        "银行卡编号", "cardNo", "bankCardNo", "bank card",
    ),
    ACCOUNT: (
        "账号", "帐号", "账户", "帐户", "收款账号", "付款账号", "收款账户", "付款账户", "对公账户",
        "结算账户", "账户号", "账户号码", "帐户号码", "银行账号", "account no", "account number",
        "account", "acct no", "acct", "a/c", "存折", "存折号", "账户编号", "账号编号", "acc no",
        "bank account", "acctNo", "accountNo", "accNo", "acctId",
    ),
    MOBILE: (
        "手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "联系方式", "移动电话",
        "预留手机号", "预留电话", "联系人电话", "手机号为", "mobile", "phone", "tel", "cell",
        "mob", "联系手机", "cellphone", "telephone", "mobile no", "phone no", "mobileNo",
        "phoneNo", "telNo", "mobilePhone",
    ),
    PASSPORT: ("护照", "护照号", "护照号码", "护照编号", "passport", "passport no", "passportNo"),
    USCC: (
        "统一社会信用代码", "社会信用代码", "信用代码", "纳税人识别号", "税号", "营业执照号",
        "uscc",
    ),
    EMAIL: ("邮箱", "电子邮箱", "电子邮件", "邮件", "email", "e-mail", "mail"),
    NEG: (
        "流水号", "流水", "交易流水号", "交易流水", "订单号", "订单编号", "订单", "交易号",
        "交易编号", "交易码", "交易参考号", "参考号", "检索参考号", "单号", "运单号", "快递单号",
        "快递", "物流单号", "凭证号", "凭证", "传票号", "批次号", "批次", "序列号", "序号", "编号",
        "票据号", "发票号", "发票代码", "发票", "合同号", "合同编号", "工单号", "业务编号",
        "业务号", "授权码", "验证码", "柜员号", "机构号", "网点号", "终端号", "商户号", "客户号",
        "客户编号", "会员号", "工号", "金额", "余额", "交易金额", "时间", "日期", "时间戳", "版本",
        "版本号",
        "座机", "固话", "传真", "邮编", "跟踪号", "追踪号", "报文号", "请求号", "设备号", "票号",
        "支票号", "serial", "serial no", "sn", "order", "order no", "order id", "tracking",
        "tracking no", "txn", "txn id", "trans id", "transaction id", "trace", "trace no", "ref",
        "ref no", "reference", "invoice", "amount", "balance", "timestamp", "time", "date",
        "version", "batch", "seq", "fax", "request id", "req id", "msg id", "单据号", "单据",
        "回单号", "回单", "业务流水", "记账流水", "交易序号", "报文", "会话", "会话号", "日志号",
        "任务号", "申请号", "申请编号", "受理号", "预约号", "排队号", "编码", "识别码", "校验码",
        "账单号", "保单号", "保单", "支付单号", "商户订单号", "退款单号", "条码", "条形码", "imei",
        "mac", "session", "trade no", "out trade no", "ticket", "工单", "案件号", "档案号",
        "orderNo", "orderId", "serialNo", "tradeNo", "txnId", "traceNo", "refNo", "seqNo",
        "batchNo", "requestId", "sessionId", "outTradeNo", "transId", "代码", "机构代码",
        "网点代码", "行号", "联行号", "支付行号", "开户行号",
        # the number range of a voucher stock (日终轧账: 凭证种类 起始号码 终止号码 张数)
        "起始号码", "终止号码", "起始号", "终止号", "起号", "止号", "号码段",
    ),
}


def _key(word: str) -> str:
    return word.lower().replace(" ", "").replace("_", "")


_KIND_OF: dict[str, str] = {}
for _kind, _words in WORDS.items():
    for _w in _words:
        _KIND_OF[_key(_w)] = _kind


@functools.lru_cache(maxsize=4096)
def _kind_of(word: str) -> str | None:
    """The kind of a label as written (any case, spaces or underscores inside)."""
    return _KIND_OF.get(_key(word))


def kind_of_word(word: str) -> str | None:
    """The kind of one whole label word (`证件号码` -> `ID`, `order no` -> `NEG`), or None."""
    return _kind_of(word)


def _trie_pattern(words: list[str]) -> str:
    """A regex matching any of `words`, factored by common prefixes (longest alternative first).

    Factoring keeps the per-position cost of the label search to one test per distinct first
    character instead of one per word.
    """
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        alts = []
        for ch in sorted(node, key=lambda c: (c == "", c)):
            if ch == "":
                continue
            piece = "[ _]?" if ch == " " else re.escape(ch)
            alts.append(piece + emit(node[ch]))
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:  # a word ends here: the longer continuations are optional
            return "(?:" + body + ")?"
        return body

    return emit(trie)


def _variants(word: str) -> set[str]:
    if not word.isascii():
        return {word}
    # as written (camelCase field names such as cardNo), and the usual cases of it
    return {word, word.lower(), word.upper(), word.title(), word.capitalize()}


# No IGNORECASE and literal first characters only: the compiled pattern then starts with a
# character-set prefix, so the regex engine skips in C to the few places a label can begin.
# The words are reversed and searched in the reversed window: the first match is then the label
# that ends nearest to the candidate, and the trie's greedy continuation prefers the longest word
# ending there (证件编号 over 编号).
# Compiled on first use, not at import (~20 ms): with the compiled core (which has its own copy of
# the words) a text without header rows never asks for a label here.
@functools.cache
def _label_rev() -> re.Pattern[str]:
    return re.compile(
        _trie_pattern(sorted({v[::-1] for ws in WORDS.values() for w in ws for v in _variants(w)}))
    )


_LONG_DIGITS = re.compile(r"[0-9\uff10-\uff19]{5}")
_TIGHT_GAP = re.compile(r"[ \t\u3000:：=#.\-'\"“”‘’（）()\[\]【】<>《》,，、/|是为码]*")


def _is_letter(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isascii() and text[i].isalpha()


def nearest_label(text: str, start: int, window: int = WINDOW) -> str | None:
    """The kind of label nearest before `text[start]` (`ID`, `CARD`, ..., `NEG`) or None."""
    lo = max(0, start - window)
    rev = text[lo:start][::-1]
    pos = 0
    label_rev = _label_rev()
    while True:
        m = label_rev.search(rev, pos)
        if m is None:
            return None
        w_end = start - m.start()  # the word is text[w_start:w_end]
        w_start = start - m.end()
        if rev[m.start()].isascii() and (_is_letter(text, w_start - 1) or _is_letter(text, w_end)):
            pos = m.start() + 1  # part of a longer English word: look further back
            continue
        break
    kind = _kind_of(text[w_start:w_end])
    if kind is None:
        return None
    if kind == NEG:
        if start - w_end > NEG_GAP or _TIGHT_GAP.fullmatch(text, w_end, start) is None:
            return None
        return NEG
    if _LONG_DIGITS.search(text, w_end, start) is not None:
        return None
    return kind


_HINT = re.compile(r"[账帐折卡AaCc]")
_HINT_WORD = re.compile(r"[账帐折卡]|acc|a/c|card", re.IGNORECASE)


def hinted(text: str, start: int, window: int = WINDOW) -> bool:
    """Cheap test: could a card or account label stand before `text[start]`?

    True when the window holds a character such labels start with; the caller then does the
    full `nearest_label`. A single-class regex search is skipped through in C.
    """
    lo = max(0, start - window)
    if _HINT.search(text, lo, start) is None:
        return False
    return _HINT_WORD.search(text, lo, start) is not None


_UNIT_AFTER = re.compile(r"[^\S\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029]?"
                         r"(?:元|万|千|百|块|%|‰|rmb|cny|usd|(?:\.|．)[0-9\uff10-\uff19])",
                         re.IGNORECASE)


def amount_after(text: str, end: int) -> bool:
    """True when the number ending at `end` is followed by a currency unit or decimals: right
    after it or after one space, not in the next cell or line (a tab or a line break between:
    a currency column beside a mobile column, an amount on the line below)."""
    return _UNIT_AFTER.match(text, end) is not None
