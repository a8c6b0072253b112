#!/usr/bin/env python3
"""Build the corpus2 labelled test documents (deterministic; fixed seed).

    python build_documents.py            # writes documents/ and documents/manifest.jsonl
    python build_documents.py --check    # also re-reads every file and verifies the labels

Labels: every customer identifier written into a file is recorded in the manifest exactly as
written (grouping kept).  Negatives (serials, vouchers, landlines, ...) are never recorded.
"""
from __future__ import annotations

import argparse
import datetime
import html
import json
import random
import re
import shutil
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape as xesc

import docx
import openpyxl
from docx.shared import Pt

import gen_values as G

SEED = 20250617
HERE = Path(__file__).resolve().parent
OUT = HERE / 'documents'
FIXED_TIME = datetime.datetime(2025, 6, 17, 9, 0, 0)

HARD_FLAGS = {'far_from_header', 'legacy_id', 'account', 'passport_cert_type',
              'passport_label_earlier', 'card_no_word', 'grouped', 'enc_gbk', 'enc_utf16',
              'luhn_bin_negative', 'card_in_acct_column', 'title_row', 'bad_checksum_negative',
              'large', 'acct_next_to_bank', 'label_far'}

R = random.Random(SEED)


# =============================================================== document bookkeeping
class Doc:
    counter = 0

    def __init__(self, kind, case, stem, ext, encoding='utf-8'):
        Doc.counter += 1
        self.kind, self.case, self.encoding = kind, case, encoding
        self.file = f'{kind}/{Doc.counter:04d}_{stem}.{ext}'
        self.ents = []
        self.flags = set()
        self.newline = 'lf'
        self.extra = {}

    def add(self, typ, value):
        self.ents.append({'type': typ, 'value': value})
        if typ == 'CN_BANK_ACCOUNT':
            self.flags.add('account')
        if typ == 'CN_RESIDENT_ID' and len(value) == 15:
            self.flags.add('legacy_id')
        return value

    def manifest(self):
        flags = set(self.flags)
        for e in self.ents:
            if e['type'] != 'EMAIL' and any(c in e['value'] for c in ' -'):
                flags.add('grouped')
        if self.encoding in ('gbk', 'gb18030'):
            flags.add('enc_gbk')
        if self.encoding.startswith('utf-16'):
            flags.add('enc_utf16')
        hard = sorted(flags & HARD_FLAGS)
        d = {'file': self.file, 'kind': self.kind, 'encoding': self.encoding, 'case': self.case,
             'hard': bool(hard), 'entities': self.ents, 'hard_reasons': hard,
             'features': sorted(flags - HARD_FLAGS), 'newline': self.newline}
        d.update(self.extra)
        return d


MANIFEST = []


def choose_encoding(rng, easy):
    if easy:
        return rng.choice(['utf-8', 'utf-8', 'utf-8', 'utf-8-sig'])
    return rng.choices(['utf-8', 'utf-8-sig', 'gbk', 'gb18030', 'utf-16'],
                       weights=[30, 15, 22, 10, 23])[0]


def write_text(doc, text, rng, crlf=None):
    if crlf is None:
        crlf = rng.random() < 0.3
    text = text.replace('\r\n', '\n')
    if crlf:
        text = text.replace('\n', '\r\n')
        doc.newline = 'crlf'
    data = text.encode(doc.encoding)    # 'utf-16' writes a BOM; 'utf-8-sig' writes a BOM
    path = OUT / doc.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    MANIFEST.append(doc.manifest())


def normalize_zip(path):
    """Rewrite an OOXML zip with fixed timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            if name == 'docProps/core.xml':
                data = re.sub(rb'(<dcterms:modified[^>]*>)[^<]*', rb'\g<1>2025-06-17T09:00:00Z', data)
            zi = zipfile.ZipInfo(name, date_time=(2025, 6, 17, 9, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)


# =============================================================== per-file context
class Ctx:
    def __init__(self, rng, easy, **kw):
        self.rng = rng
        self.easy = easy
        pick = rng.choice
        self.card_style = 'plain' if easy else pick(['plain', 'plain', 'space', 'space', 'hyphen'])
        self.mobile_style = 'plain' if easy else pick(['plain', 'plain', 'space', 'hyphen', '+86',
                                                         '+86 space', '0086'])
        self.acct_style = 'plain' if easy else pick(['plain', 'plain', 'space'])
        self.bad_id_rate = 0 if easy else pick([0, 0, 0.03, 0.08])
        self.landline_rate = 0 if easy else pick([0, 0.05, 0.15])
        self.luhn_neg_rate = 0 if easy else pick([0, 0.2, 0.5])
        self.passport_rate = 0 if easy else 0.15
        self.legacy_rate = 0
        self.x_rate = 0.09
        self.acct_card_rate = 0.85   # personal 账号 column: share of card numbers
        self.id_years = (1950, 2006)
        self.day = G.rand_date(rng, 2024, 2025)
        self.__dict__.update(kw)


def new_person(ctx, with_cert_type):
    rng = ctx.rng
    name, sp, gp = G.person_name(rng)
    r = rng.random()
    if with_cert_type and r < ctx.passport_rate:
        kind = 'passport'
    elif rng.random() < ctx.legacy_rate:
        kind = 'id15'
    elif rng.random() < ctx.bad_id_rate:
        kind = 'bad'
    else:
        kind = 'id18'
    return {'name': name, 'sp': sp, 'gp': gp, 'kind': kind, 'gender': rng.choice('男女')}


def new_corp(ctx):
    rng = ctx.rng
    name, sp, gp = G.person_name(rng)
    return {'name': G.company_name(rng), 'contact': name, 'sp': sp, 'gp': gp,
            'kind': 'corp', 'bank': rng.choice(G.MAIN_BANKS)}


def v_cert(doc, ctx, rec):
    rng = ctx.rng
    k = rec['kind']
    if k == 'passport':
        doc.flags.add('passport_cert_type')
        return doc.add('CN_PASSPORT', G.passport(rng))
    if k == 'id15':
        return doc.add('CN_RESIDENT_ID', G.id15(rng))
    if k == 'bad':
        doc.flags.add('bad_checksum_negative')
        return G.bad_id(rng)
    v = G.id18(rng, want_x=True if rng.random() < ctx.x_rate else None,
               y0=ctx.id_years[0], y1=ctx.id_years[1])
    return doc.add('CN_RESIDENT_ID', v)


def v_card(doc, ctx, rec=None):
    num, bank, _ = G.card(ctx.rng)
    if rec is not None:
        rec['card_bank'] = bank
    return doc.add('BANK_CARD', G.fmt_card(num, ctx.card_style))


def v_acct(doc, ctx, rec, personal):
    rng = ctx.rng
    if personal and rng.random() < ctx.acct_card_rate:
        num, bank, _ = G.card(rng)
        rec['card_bank'] = bank
        doc.flags.add('card_in_acct_column')
        return doc.add('BANK_CARD', G.fmt_card(num, ctx.card_style))
    num, bank = G.account(rng, rec.get('bank'))
    rec['acct_bank'] = bank
    return doc.add('CN_BANK_ACCOUNT', G.fmt_acct(num, ctx.acct_style))


def v_mobile(doc, ctx, rec=None):
    if ctx.rng.random() < ctx.landline_rate:
        return G.landline(ctx.rng)
    return doc.add('CN_MOBILE', G.fmt_mobile(G.mobile(ctx.rng), ctx.mobile_style))


def v_email(doc, ctx, rec):
    return doc.add('EMAIL', G.email(ctx.rng, rec['sp'], rec['gp']))


def v_serial(doc, ctx, rec=None):
    if ctx.rng.random() < ctx.luhn_neg_rate:
        doc.flags.add('luhn_bin_negative')
        return G.luhn_bin_number(ctx.rng)
    return G.serial(ctx.rng, ctx.day)


def v_voucher(doc, ctx, rec=None):
    if ctx.rng.random() < ctx.luhn_neg_rate:
        doc.flags.add('luhn_bin_negative')
        return G.luhn_bin_number(ctx.rng)
    return G.voucher(ctx.rng)


SUMMARIES = ['工资', '转账', 'ATM取款', '消费', '代发工资', '跨行转账', '还款', '利息', '手续费',
             '网银转账', '柜面存款', '社保', '公积金', '退款', '水电费', '房租,押金', '货款,6月']


def v_addr(ctx):
    a = G.address(ctx.rng)
    if ctx.rng.random() < 0.3:
        a = a.replace('区', '区, ', 1)
    return a


def corp_bank_branch(doc, ctx, rec):
    return G.branch_name(ctx.rng, rec.get('acct_bank') or rec.get('bank'))


# column id -> (cn headers, en headers, json keys, xml tags, value function(doc, ctx, rec))
COLS = {
    'seq': (['序号'], ['No.'], ['seq'], ['SeqNo'], None),
    'name': (['姓名', '客户姓名', '户名', '客户名称'], ['Name', 'Customer Name'],
             ['custName', 'name', 'acctName'], ['CustName', 'AcctName'],
             lambda d, c, r: r['name']),
    'gender': (['性别'], ['Gender'], ['gender'], ['Gender'], lambda d, c, r: r['gender']),
    'cert_type': (['证件类型'], ['ID Type'], ['certType', 'idType'], ['IdType', 'CertType'],
                  None),
    'cert_no': (['证件号码', '证件号'], ['ID No.', 'Cert No.', 'ID Number'],
                ['certNo', 'idNo', 'CertNo'], ['CertNo', 'IdNo'], v_cert),
    'id_no': (['身份证号', '身份证号码', '证件号码'], ['ID No.', 'ID Card No.'],
              ['idNo', 'idCardNo', 'certNo'], ['IdNo', 'CertNo'], v_cert),
    'card': (['卡号', '银行卡号', '借记卡号', '交易卡号'], ['Card No.', 'Card Number'],
             ['cardNo', 'bankCardNo'], ['CardNo'], lambda d, c, r: v_card(d, c, r)),
    'acct': (['账号', '对公账号', '结算账号', '账户'], ['Account No.', 'Acct No.'],
             ['acctNo', 'accountNo'], ['AcctNo', 'AccountNo'],
             lambda d, c, r: v_acct(d, c, r, r['kind'] != 'corp')),
    'pay_acct': (['收款账号', '账号', '入账账号'], ['Payee Account', 'Account No.'],
                 ['payeeAcctNo', 'acctNo'], ['PayeeAcctNo', 'AcctNo'],
                 lambda d, c, r: v_acct(d, c, r, True)),
    'repay_acct': (['还款账号', '扣款账号'], ['Repayment Account'], ['repayAcctNo'],
                   ['RepayAcctNo'], lambda d, c, r: v_acct(d, c, r, True)),
    'mobile': (['联系电话', '手机号码', '手机号', '移动电话'], ['Mobile', 'Phone', 'Mobile No.'],
               ['mobile', 'phoneNo', 'mobileNo'], ['MobileNo', 'PhoneNo'],
               lambda d, c, r: v_mobile(d, c, r)),
    'email': (['电子邮箱', '邮箱', 'E-mail'], ['Email', 'E-mail'], ['email'], ['Email'], v_email),
    'branch': (['开户行', '开户网点', '开户机构'], ['Opening Branch', 'Bank'],
               ['openBranch', 'bankName'], ['OpenBrName', 'BankName'],
               lambda d, c, r: G.branch_name(c.rng, r.get('card_bank') if r.get('card_bank') in G.MAIN_BANKS else None)),
    'corp_branch': (['开户行', '开户银行'], ['Bank'], ['bankName'], ['BankName'], corp_bank_branch),
    'open_date': (['开户日期', '签约日期'], ['Open Date'], ['openDate'], ['OpenDate'],
                  lambda d, c, r: G.rand_date(c.rng, 2005, 2024).isoformat()),
    'old_date': (['开户日期'], ['Open Date'], ['openDate'], ['OpenDate'],
                 lambda d, c, r: G.rand_date(c.rng, 1992, 2001).strftime('%Y%m%d')),
    'txn_time': (['交易时间', '记账时间'], ['Txn Time', 'Time'], ['txnTime'], ['TxnTime'],
                 lambda d, c, r: G.timestamp(c.rng, c.day)),
    'date': (['日期', '业务日期'], ['Date'], ['bizDate'], ['BizDate'],
             lambda d, c, r: c.day.strftime(c.rng.choice(['%Y-%m-%d', '%Y%m%d', '%Y/%m/%d']))),
    'serial': (['流水号', '交易流水号', '柜面流水号'], ['Txn Serial', 'Serial No.'],
               ['serialNo', 'txnSerialNo', 'traceNo'], ['TxnSerialNo', 'SerialNo'], v_serial),
    'voucher': (['凭证号', '凭证号码'], ['Voucher No.'], ['voucherNo'], ['VoucherNo'], v_voucher),
    'order': (['订单号', '商户订单号'], ['Order ID'], ['orderId', 'orderNo'], ['OrderId'],
              lambda d, c, r: G.order_id(c.rng)),
    'tracking': (['运单号', '快递单号'], ['Tracking No.'], ['waybillNo'], ['WaybillNo'],
                 lambda d, c, r: G.tracking(c.rng)),
    'amount': (['金额', '交易金额', '发生额'], ['Amount'], ['amount', 'txnAmt'], ['TxnAmt'],
               lambda d, c, r: G.amount(c.rng)),
    'loan_amt': (['贷款金额', '授信额度'], ['Loan Amount'], ['loanAmt'], ['LoanAmt'],
                 lambda d, c, r: G.amount(c.rng, big=True)),
    'balance': (['余额', '账户余额'], ['Balance'], ['balance'], ['Balance'],
                lambda d, c, r: G.amount(c.rng, big=True)),
    'summary': (['摘要', '备注', '用途'], ['Memo'], ['memo', 'remark'], ['Memo'],
                lambda d, c, r: c.rng.choice(SUMMARIES)),
    'teller': (['柜员号', '经办柜员'], ['Teller'], ['tellerNo'], ['TellerNo'],
               lambda d, c, r: G.teller(c.rng)),
    'branch_code': (['网点号', '机构号', '机构代码'], ['Branch Code'], ['brNo', 'orgCode'],
                    ['BranchNo', 'OrgCode'], lambda d, c, r: G.branch_code(c.rng)),
    'landline_col': (['网点电话', '客服电话'], ['Branch Tel'], ['branchTel'], ['BranchTel'],
                     lambda d, c, r: G.landline(c.rng)),
    'company': (['单位名称', '企业名称', '户名'], ['Company'], ['corpName', 'acctName'],
                ['CorpName', 'AcctName'], lambda d, c, r: r['name']),
    'uscc': (['统一社会信用代码', '社会信用代码'], ['USCC', 'Credit Code'], ['creditCode', 'uscc'],
             ['CreditCode', 'UniSocCrdtCd'], lambda d, c, r: d.add('CN_USCC', G.make_uscc(c.rng))),
    'contact': (['联系人', '财务联系人'], ['Contact'], ['contactName'], ['ContactName'],
                lambda d, c, r: r['contact']),
    'address': (['联系地址', '地址', '住址'], ['Address'], ['address'], ['Addr'],
                lambda d, c, r: v_addr(c)),
    'invoice': (['发票号码'], ['Invoice No.'], ['invoiceNo'], ['InvoiceNo'],
                lambda d, c, r: G.invoice_no(c.rng)),
    'batch': (['批次号'], ['Batch ID'], ['batchNo'], ['BatchNo'], lambda d, c, r: G.batch_id(c.rng)),
    'rand_no': (['业务编号', '合同编号'], ['Ref No.'], ['bizNo'], ['BizNo'],
                lambda d, c, r: G.rand18(c.rng)),
    'passbook': (['存折账号', '账号'], ['Passbook Acct'], ['acctNo'], ['AcctNo'],
                 lambda d, c, r: v_acct(d, c, r, False)),
}

TEMPLATES = {
    'customers': (['seq', 'name', 'cert_type', 'cert_no', 'card', 'mobile', 'branch', 'open_date'], 'person'),
    'customers_simple': (['name', 'id_no', 'card', 'mobile'], 'person'),
    'contacts': (['seq', 'name', 'gender', 'mobile', 'email', 'address'], 'person'),
    'txn': (['txn_time', 'serial', 'name', 'card', 'amount', 'balance', 'summary', 'teller', 'voucher'], 'person'),
    'txn_acct': (['date', 'serial', 'name', 'acct', 'amount', 'summary', 'branch_code'], 'person'),
    'corp': (['company', 'uscc', 'acct', 'corp_branch', 'contact', 'mobile', 'email'], 'corp'),
    'corp_txn': (['txn_time', 'company', 'acct', 'amount', 'serial', 'summary'], 'corp'),
    'payroll': (['seq', 'name', 'id_no', 'pay_acct', 'amount', 'summary'], 'person'),
    'loan': (['name', 'cert_type', 'cert_no', 'repay_acct', 'loan_amt', 'open_date', 'mobile'], 'person'),
    'kyc': (['name', 'cert_type', 'cert_no', 'mobile', 'email', 'address', 'teller'], 'person'),
    'orders': (['order', 'name', 'card', 'amount', 'txn_time', 'tracking'], 'person'),
    'legacy': (['name', 'id_no', 'passbook', 'old_date', 'address'], 'person'),
    'neg_journal': (['txn_time', 'serial', 'voucher', 'amount', 'branch_code', 'teller', 'summary'], 'neg'),
    'neg_logistics': (['order', 'tracking', 'amount', 'date', 'landline_col'], 'neg'),
    'neg_invoice': (['invoice', 'batch', 'rand_no', 'amount', 'date', 'branch_code'], 'neg'),
}
POS_TEMPLATES = [t for t, (_, k) in TEMPLATES.items() if k != 'neg' and t != 'legacy']
NEG_TEMPLATES = ['neg_journal', 'neg_logistics', 'neg_invoice']
EASY_TEMPLATES = ['customers', 'customers_simple', 'contacts', 'txn', 'kyc', 'orders']


def pick_template(rng, easy):
    return rng.choice(EASY_TEMPLATES if easy else POS_TEMPLATES)
REPORT_TITLES = {'customers': '客户信息清单', 'customers_simple': '客户信息清单', 'contacts': '客户联系信息表',
                 'txn': '交易明细清单', 'txn_acct': '账户交易明细', 'corp': '对公客户台账',
                 'corp_txn': '对公交易明细', 'payroll': '代发工资清单', 'loan': '贷款客户台账',
                 'kyc': '客户尽职调查复核清单', 'orders': '商户订单对账单', 'legacy': '老系统客户档案'}
STEMS = {'customers': 'customers', 'customers_simple': 'cust_list', 'contacts': 'contacts',
         'txn': 'txn_detail', 'txn_acct': 'acct_txn', 'corp': 'corp_accounts', 'corp_txn': 'corp_txn',
         'payroll': 'payroll', 'loan': 'loan_ledger', 'kyc': 'kyc_review', 'orders': 'merchant_orders',
         'legacy': 'old_system_export', 'neg_journal': 'journal', 'neg_logistics': 'logistics',
         'neg_invoice': 'invoices'}


def build_table(doc, ctx, template, nrows, lang='cn', fmt='cn'):
    """Returns (col ids, header strings, rows of strings). Labels recorded on doc."""
    cols, rkind = TEMPLATES[template]
    rng = ctx.rng
    idx = {'cn': 0, 'en': 1, 'json': 2, 'xml': 3}[lang]
    headers = []
    for c in cols:
        names = COLS[c][idx]
        headers.append(rng.choice(names))
    en = lang == 'en'
    ct_style = rng.choice(['full', 'short', 'code'])
    rows = []
    for i in range(nrows):
        rec = new_corp(ctx) if rkind == 'corp' else new_person(ctx, 'cert_type' in cols)
        row = []
        for c in cols:
            if c == 'seq':
                row.append(str(i + 1))
            elif c == 'cert_type':
                row.append('')   # filled after cert_no so it matches the kind
            else:
                row.append(COLS[c][4](doc, ctx, rec))
        if 'cert_type' in cols:
            k = rec['kind']
            if en:
                t = 'Passport' if k == 'passport' else 'ID Card'
            elif ct_style == 'code' and lang in ('json', 'xml'):
                t = '03-护照' if k == 'passport' else '01-居民身份证'
            else:
                t = '护照' if k == 'passport' else ('居民身份证' if ct_style == 'full' else '身份证')
            row[cols.index('cert_type')] = t
        rows.append(row)
    if nrows > 25 and rkind != 'neg':
        doc.flags.add('far_from_header')
    return cols, headers, rows


def nrows_choice(rng, easy):
    if easy:
        return rng.randint(5, 25)
    return rng.choice([rng.randint(5, 20), rng.randint(20, 60), rng.randint(60, 200)])


# =============================================================== renderers
def render_csv(rows, headers, delim, quote_all=False, apostrophe=False, cols=None):
    import csv as _csv
    import io
    buf = io.StringIO()
    w = _csv.writer(buf, delimiter=delim, lineterminator='\n',
                    quoting=_csv.QUOTE_ALL if quote_all else _csv.QUOTE_MINIMAL)
    w.writerow(headers)
    for row in rows:
        if apostrophe:
            row = ["'" + v if (len(v.replace(' ', '')) >= 11 and v.replace(' ', '').replace('-', '').isdigit()
                               or (len(v) == 18 and v[:17].isdigit())) else v for v in row]
        w.writerow(row)
    return buf.getvalue()


def dwidth(s):
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 1 for ch in s)


def pad(s, w, right=False):
    p = max(w - dwidth(s), 0)
    return ' ' * p + s if right else s + ' ' * p


def render_fixed(headers, rows, title, rng, repeat_header=True, page_rows=None, org=''):
    widths = [max([dwidth(h)] + [dwidth(r[i]) for r in rows]) + rng.choice([2, 3, 4])
              for i, h in enumerate(headers)]
    total_w = sum(widths)
    page_rows = page_rows or rng.choice([40, 50, 60])
    pages = [rows[i:i + page_rows] for i in range(0, len(rows), page_rows)] or [[]]
    prt = f'{FIXED_TIME.date().isoformat()} {rng.randint(16, 18)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}'
    teller = G.teller(rng)
    out = []
    amount_cols = {i for i, h in enumerate(headers) if '额' in h or 'Amount' in h or '余额' in h}
    for pn, page in enumerate(pages, 1):
        out.append(pad('', max((total_w - dwidth(title)) // 2, 0)) + title)
        out.append(f'机构：{org}    打印柜员：{teller}    打印时间：{prt}'
                   + ' ' * 6 + f'第 {pn} 页 / 共 {len(pages)} 页')
        if pn == 1 or repeat_header:
            out.append('-' * total_w)
            out.append(''.join(pad(h, w) for h, w in zip(headers, widths)).rstrip())
            out.append('-' * total_w)
        for r in page:
            out.append(''.join(pad(v, w - 2, right=(i in amount_cols)) + '  '
                               for i, (v, w) in enumerate(zip(r, widths))).rstrip())
        out.append('-' * total_w)
        out.append(f'本页小计：{len(page)} 笔' + ' ' * 10 + f'- {pn} -')
        if pn != len(pages):
            out.append('\f' if rng.random() < 0.5 else '')
    out.append(f'合计：{len(rows)} 笔    复核：__________   主管：__________')
    return '\n'.join(out) + '\n'


def html_page(title, body, charset):
    return (f'<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="{charset}">\n'
            f'<title>{html.escape(title)}</title>\n<style>table{{border-collapse:collapse}}'
            f'td,th{{border:1px solid #ccc;padding:2px 6px}}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n')


def html_charset(enc):
    return {'utf-8': 'utf-8', 'utf-8-sig': 'utf-8', 'gbk': 'gbk', 'gb18030': 'gb18030',
            'utf-16': 'utf-16'}[enc]


def xml_decl(enc):
    e = {'utf-8': 'UTF-8', 'utf-8-sig': 'UTF-8', 'gbk': 'GBK', 'gb18030': 'GB18030',
         'utf-16': 'UTF-16'}[enc]
    return f'<?xml version="1.0" encoding="{e}"?>\n'


# =============================================================== builders: tables
def ext_for_delim(d, rng):
    return {'\t': rng.choice(['tsv', 'txt', 'tsv']), '|': rng.choice(['txt', 'csv', 'dat'])}.get(d, 'csv')


def make_csv(case, rng, template=None, delim=',', quote_all=False, apostrophe=False,
             lang='cn', easy=None, nrows=None, ctx_kw=None, stem=None, enc=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    template = template or pick_template(rng, easy)
    stem = stem or STEMS[template]
    enc = enc or choose_encoding(rng, easy)
    doc = Doc('csv', case, stem, ext_for_delim(delim, rng), enc)
    ctx = Ctx(rng, easy, **(ctx_kw or {}))
    nrows = nrows or nrows_choice(rng, easy)
    cols, headers, rows = build_table(doc, ctx, template, nrows, lang)
    text = render_csv(rows, headers, delim, quote_all, apostrophe, cols)
    doc.extra['rows'] = nrows
    doc.extra['template'] = template
    write_text(doc, text, rng)


def make_xlsx(case, rng, easy=None, title=False, sheets=1, template=None, nrows=None,
              ctx_kw=None, stem=None, neg=False):
    easy = (rng.random() < 0.45) if easy is None else easy
    tlist = [template if (template and s == 0) else (rng.choice(NEG_TEMPLATES) if neg else pick_template(rng, easy))
             for s in range(sheets)]
    doc = Doc('xlsx', case, stem or STEMS[tlist[0]], 'xlsx', 'binary')
    ctx = Ctx(rng, easy, **(ctx_kw or {}))
    wb = openpyxl.Workbook()
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = 'teller'
    first = True
    total = 0
    for s, t in enumerate(tlist):
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = {'customers': '客户信息', 'txn': '交易明细', 'corp': '对公客户',
                    'payroll': '代发明细', 'loan': '贷款台账'}.get(t, f'Sheet{s + 1}')
        if ws.title in wb.sheetnames[:-1]:
            ws.title = f'{ws.title}{s + 1}'
        n = nrows or nrows_choice(rng, easy)
        lang = 'en' if (not easy and rng.random() < 0.15) else 'cn'
        cols, headers, rows = build_table(doc, ctx, t, n, lang)
        total += n
        r0 = 1
        if title:
            ws.cell(row=1, column=1, value=f'{G.branch_name(rng)}{rng.choice(["客户信息清单", "交易明细", "代发工资明细表", "对公客户台账"])}')
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(cols))
            ws.cell(row=2, column=1, value=f'导出日期：{ctx.day.isoformat()}  导出柜员：{G.teller(rng)}')
            r0 = 4 if rng.random() < 0.5 else 3
            doc.flags.add('title_row')
        for j, h in enumerate(headers, 1):
            ws.cell(row=r0, column=j, value=h).font = openpyxl.styles.Font(bold=True)
        for i, row in enumerate(rows, r0 + 1):
            for j, v in enumerate(row, 1):
                c = ws.cell(row=i, column=j)
                if cols[j - 1] in ('amount', 'balance', 'loan_amt') and rng.random() < 0.7:
                    c.value = float(v.replace(',', ''))
                    c.number_format = '#,##0.00'
                else:
                    c.value = v
                    c.number_format = '@'
        for j in range(1, len(cols) + 1):
            ws.column_dimensions[openpyxl.utils.get_column_letter(j)].width = 22
    if sheets > 1 and rng.random() < 0.5:
        ws = wb.create_sheet('说明')
        ws['A1'] = '本表仅供内部使用，请勿外传。客服热线95588，网点电话' + G.landline(rng)
    path = OUT / doc.file
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    normalize_zip(path)
    doc.extra['rows'] = total
    MANIFEST.append(doc.manifest())


def make_html_list(case, rng, easy=None, thead=True, template=None, nrows=None, ctx_kw=None,
                   stem='list'):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    t = template or pick_template(rng, easy)
    doc = Doc('html', case, stem + '_' + STEMS[t], rng.choice(['html', 'htm', 'html']), enc)
    ctx = Ctx(rng, easy, **(ctx_kw or {}))
    n = nrows or nrows_choice(rng, easy)
    cols, headers, rows = build_table(doc, ctx, t, n, 'en' if rng.random() < 0.1 else 'cn')
    parts = [f'<div class="hd"><h2>{html.escape(G.branch_name(rng))} — 客户查询结果</h2>',
             f'<p>查询柜员：{G.teller(rng)} 查询时间：{G.timestamp(rng, ctx.day)} 共 {n} 条</p></div>',
             '<table id="result" class="grid">']
    hrow = '<tr>' + ''.join(f'<th>{html.escape(h)}</th>' for h in headers) + '</tr>'
    if thead:
        parts.append(f'<thead>{hrow}</thead>\n<tbody>')
    else:
        parts.append(hrow.replace('<th>', '<td><b>').replace('</th>', '</b></td>'))
    for r in rows:
        parts.append('<tr>' + ''.join(f'<td>{html.escape(v)}</td>' for v in r) + '</tr>')
    if thead:
        parts.append('</tbody>')
    parts.append('</table>')
    parts.append(f'<div class="pager">第 1 页 / 共 1 页 &nbsp; 客服热线 {rng.choice(list(G.HOTLINES.values()))}</div>')
    write_text(doc, html_page('客户信息查询', '\n'.join(parts), html_charset(enc)), rng)


def make_json_list(case, rng, easy=None, pretty=True, ascii_=False, template=None, nrows=None,
                   ctx_kw=None, stem='api'):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    t = template or pick_template(rng, easy)
    doc = Doc('json', case, stem + '_' + STEMS[t], 'json', enc)
    ctx = Ctx(rng, easy, **(ctx_kw or {}))
    n = nrows or nrows_choice(rng, easy)
    cols, headers, rows = build_table(doc, ctx, t, n, 'json')
    recs = []
    for r in rows:
        rec = {}
        for c, h, v in zip(cols, headers, r):
            if c in ('amount', 'balance', 'loan_amt') and rng.random() < 0.5:
                rec[h] = float(v.replace(',', ''))
            elif c == 'seq':
                rec[h] = int(v)
            else:
                rec[h] = v
        recs.append(rec)
    obj = {'code': '0000', 'msg': '交易成功', 'traceId': G.serial(rng, ctx.day),
           'timestamp': G.timestamp(rng, ctx.day),
           'data': {'total': n, 'pageNo': 1, 'pageSize': max(n, 20),
                    rng.choice(['list', 'records', 'rows']): recs}}
    text = json.dumps(obj, ensure_ascii=ascii_, indent=(rng.choice([2, 4]) if pretty else None),
                      separators=None if pretty else (',', ':'))
    write_text(doc, text + '\n', rng, crlf=False if not pretty else None)


def make_xml_batch(case, rng, easy=None, template=None, nrows=None, ctx_kw=None, stem='batch'):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    t = template or pick_template(rng, easy)
    doc = Doc('xml', case, stem + '_' + STEMS[t], 'xml', enc)
    ctx = Ctx(rng, easy, **(ctx_kw or {}))
    n = nrows or nrows_choice(rng, easy)
    cols, headers, rows = build_table(doc, ctx, t, n, 'xml')
    out = [xml_decl(enc).rstrip(), '<BatchFile>', '  <Head>',
           f'    <BatchNo>{G.batch_id(rng)}</BatchNo>', f'    <BranchNo>{G.branch_code(rng)}</BranchNo>',
           f'    <TellerNo>{G.teller(rng)}</TellerNo>', f'    <TotalNum>{n}</TotalNum>',
           f'    <CreateTime>{G.timestamp(rng, ctx.day)}</CreateTime>', '  </Head>', '  <Body>']
    for r in rows:
        out.append('    <Record>')
        for h, v in zip(headers, r):
            out.append(f'      <{h}>{xesc(v)}</{h}>')
        out.append('    </Record>')
    out += ['  </Body>', '</BatchFile>']
    write_text(doc, '\n'.join(out) + '\n', rng)


def make_report_table(case, rng, easy=None, template=None, nrows=None, repeat_header=None,
                      ctx_kw=None, stem=None, title=None):
    easy = (rng.random() < 0.3) if easy is None else easy
    enc = choose_encoding(rng, easy)
    t = template or pick_template(rng, easy)
    doc = Doc('report', case, stem or STEMS[t], rng.choice(['txt', 'txt', 'prn', 'rpt']), enc)
    ctx = Ctx(rng, easy, **(ctx_kw or {}))
    n = nrows or nrows_choice(rng, easy)
    cols, headers, rows = build_table(doc, ctx, t, n, 'cn')
    if n > 25 and TEMPLATES[t][1] != 'neg':
        doc.flags.add('far_from_header')
    org = G.branch_name(rng)
    title = title or REPORT_TITLES.get(t, '业务清单')
    rh = (rng.random() < 0.5) if repeat_header is None else repeat_header
    write_text(doc, render_fixed(headers, rows, f'{org}  {title}', rng, rh, org=G.branch_code(rng)), rng)


# =============================================================== builders: forms / detail
def label_values(doc, ctx, kind):
    """List of (label, value) pairs for a single-customer detail record."""
    rng = ctx.rng
    pairs = []
    if kind == 'corp':
        rec = new_corp(ctx)
        pairs.append((rng.choice(['单位名称', '客户名称']), rec['name']))
        pairs.append(('统一社会信用代码', doc.add('CN_USCC', G.make_uscc(rng))))
        pairs.append(('法定代表人', G.person_name(rng)[0]))
        pairs.append(('法定代表人证件号码', doc.add('CN_RESIDENT_ID', G.id18(rng))))
        pairs.append(('账户性质', rng.choice(['基本存款账户', '一般存款账户', '专用存款账户'])))
        pairs.append((rng.choice(['账号', '对公账号', '结算账号']), v_acct(doc, ctx, rec, False)))
        pairs.append(('开户银行', G.branch_name(rng, rec.get('acct_bank'))))
        pairs.append(('财务联系人', rec['contact']))
        pairs.append(('联系电话', v_mobile(doc, ctx)))
        pairs.append(('单位电话', G.landline(rng)))
        if rng.random() < 0.6:
            pairs.append(('电子邮箱', doc.add('EMAIL', G.email(rng, rec['sp'], rec['gp']))))
    else:
        rec = new_person(ctx, True)
        pairs.append((rng.choice(['客户姓名', '姓名', '户名']), rec['name']))
        pairs.append(('性别', rec['gender']))
        k = rec['kind']
        pairs.append(('证件类型', '护照' if k == 'passport' else '居民身份证'))
        pairs.append(('证件号码', v_cert(doc, ctx, rec)))
        pairs.append(('证件有效期', f'{G.rand_date(rng, 2015, 2023).isoformat()}至{G.rand_date(rng, 2030, 2045).isoformat()}'))
        pairs.append(('国籍', '中国'))
        pairs.append((rng.choice(['手机号码', '联系电话', '移动电话']), v_mobile(doc, ctx)))
        if rng.random() < 0.6:
            pairs.append(('电子邮箱', v_email(doc, ctx, rec)))
        pairs.append(('联系地址', G.address(rng)))
        pairs.append(('职业', rng.choice(['企业职员', '个体工商户', '教师', '退休人员', '自由职业'])))
        if rng.random() < 0.8:
            pairs.append((rng.choice(['卡号', '银行卡号', '申请卡号']), v_card(doc, ctx, rec)))
        if not ctx.easy and rng.random() < 0.3:
            num, bank = G.account(rng)
            pairs.append(('定期存单账号', doc.add('CN_BANK_ACCOUNT', G.fmt_acct(num, ctx.acct_style))))
        pairs.append(('开户网点', G.branch_name(rng)))
    pairs.append(('经办柜员', G.teller(rng)))
    pairs.append(('交易流水号', v_serial(doc, ctx)))
    pairs.append(('业务日期', ctx.day.isoformat()))
    return pairs


def make_docx_form(case, rng, easy=None, corp=None):
    easy = (rng.random() < 0.4) if easy is None else easy
    corp = (not easy and rng.random() < 0.3) if corp is None else corp
    doc = Doc('docx', case, 'application_form', 'docx', 'binary')
    ctx = Ctx(rng, easy)
    d = docx.Document()
    d.core_properties.created = FIXED_TIME
    d.core_properties.modified = FIXED_TIME
    d.core_properties.author = 'teller'
    bank = rng.choice(G.MAIN_BANKS)
    d.add_heading(f'{bank}{"单位银行结算账户开户申请书" if corp else "个人客户开户申请表"}', level=1)
    d.add_paragraph(f'申请日期：{ctx.day.year}年{ctx.day.month}月{ctx.day.day}日    编号：{G.voucher(rng)}')
    pairs = label_values(doc, ctx, 'corp' if corp else 'person')
    if rng.random() < 0.5:
        t = d.add_table(rows=0, cols=4)
        t.style = 'Table Grid'
        for i in range(0, len(pairs), 2):
            cells = t.add_row().cells
            cells[0].text, cells[1].text = pairs[i]
            if i + 1 < len(pairs):
                cells[2].text, cells[3].text = pairs[i + 1]
    else:
        t = d.add_table(rows=0, cols=2)
        t.style = 'Table Grid'
        for lab, val in pairs:
            cells = t.add_row().cells
            cells[0].text, cells[1].text = lab, val
    d.add_paragraph('本人/本单位承诺所提供的资料真实、有效，已阅读并同意《账户管理协议》。')
    d.add_paragraph('申请人签字：__________        柜员：__________        复核：__________')
    d.add_paragraph(f'客服热线：{G.HOTLINES[bank]}    网点电话：{G.landline(rng)}')
    path = OUT / doc.file
    path.parent.mkdir(parents=True, exist_ok=True)
    d.save(path)
    normalize_zip(path)
    MANIFEST.append(doc.manifest())


def make_docx_letter(case, rng, easy=None):
    easy = (rng.random() < 0.4) if easy is None else easy
    doc = Doc('docx', case, 'customer_letter', 'docx', 'binary')
    ctx = Ctx(rng, easy)
    d = docx.Document()
    d.core_properties.created = FIXED_TIME
    d.core_properties.modified = FIXED_TIME
    bank = rng.choice(G.MAIN_BANKS)
    br = G.branch_name(rng, bank)
    name, sp, gp = G.person_name(rng)
    rec = {'name': name, 'sp': sp, 'gp': gp}
    d.add_paragraph(br).runs[0].font.size = Pt(14)
    d.add_heading(rng.choice(['客户告知书', '业务办理回执', '账户变动通知书', '挂失补卡确认函']), level=2)
    d.add_paragraph(f'尊敬的{name}{rng.choice(["先生", "女士"])}：')
    old, _, _ = G.card(rng)
    new_card = v_card(doc, ctx, rec)
    mob = v_mobile(doc, ctx)
    body = rng.choice([
        f'您好！您于{ctx.day.year}年{ctx.day.month}月{ctx.day.day}日在我行办理的借记卡挂失补卡业务已完成。'
        f'原尾号{old[-4:]}的借记卡已注销，新卡卡号为{new_card}，请妥善保管。',
        f'感谢您选择{bank}。您申请的银行卡 {new_card} 已于{ctx.day.isoformat()}激活，'
        f'预留手机号为{mob}。',
    ])
    d.add_paragraph(body)
    if '预留手机号' not in body:
        d.add_paragraph(f'我行已将动账提醒发送至您的预留手机 {mob}。')
    idv = G.id18(rng)
    d.add_paragraph(f'客户证件号码：{doc.add("CN_RESIDENT_ID", idv)}')
    if rng.random() < 0.5:
        d.add_paragraph(f'电子对账单将发送至：{v_email(doc, ctx, rec)}')
    t = d.add_table(rows=1, cols=4)
    t.style = 'Table Grid'
    for c, h in zip(t.rows[0].cells, ['业务类型', '交易流水号', '金额（元）', '办理时间']):
        c.text = h
    for _ in range(rng.randint(1, 4)):
        cells = t.add_row().cells
        cells[0].text = rng.choice(['挂失', '补卡', '密码重置', '转账', '开卡'])
        cells[1].text = v_serial(doc, ctx)
        cells[2].text = G.amount(rng)
        cells[3].text = G.timestamp(rng, ctx.day)
    foot = f'如有疑问，请致电客服热线{G.HOTLINES[bank]}或网点电话{G.landline(rng)}。'
    if rng.random() < 0.3:   # the bank's own service mailbox is not customer data
        foot += f'本行服务邮箱：service@{rng.choice(["icbc", "ccb", "boc", "cmbchina"])}.com.cn'
        doc.flags.add('bank_email_negative')
    d.add_paragraph(foot)
    d.add_paragraph('此致\n敬礼')
    d.add_paragraph(f'{br}\n{ctx.day.year}年{ctx.day.month}月{ctx.day.day}日')
    path = OUT / doc.file
    path.parent.mkdir(parents=True, exist_ok=True)
    d.save(path)
    normalize_zip(path)
    MANIFEST.append(doc.manifest())


def make_docx_table(case, rng, easy=None, neg=False):
    easy = (rng.random() < 0.4) if easy is None else easy
    doc = Doc('docx', case, 'payroll_notice' if not neg else 'voucher_register', 'docx', 'binary')
    ctx = Ctx(rng, easy)
    d = docx.Document()
    d.core_properties.created = FIXED_TIME
    d.core_properties.modified = FIXED_TIME
    t_id = rng.choice(NEG_TEMPLATES) if neg else rng.choice(
        ['customers_simple', 'customers', 'contacts'] if easy else ['payroll', 'customers_simple', 'loan', 'customers', 'corp'])
    n = rng.randint(3, 30)
    cols, headers, rows = build_table(doc, ctx, t_id, n, 'cn')
    d.add_heading(f'{G.branch_name(rng)}{"凭证领用登记簿" if neg else "业务清单"}', level=2)
    d.add_paragraph(f'批次号：{G.batch_id(rng)}    制表日期：{ctx.day.isoformat()}    共{n}笔')
    t = d.add_table(rows=1, cols=len(headers))
    t.style = 'Table Grid'
    for c, h in zip(t.rows[0].cells, headers):
        c.text = h
    for r in rows:
        cells = t.add_row().cells
        for c, v in zip(cells, r):
            c.text = v
    d.add_paragraph('制表：__________  复核：__________')
    path = OUT / doc.file
    path.parent.mkdir(parents=True, exist_ok=True)
    d.save(path)
    normalize_zip(path)
    MANIFEST.append(doc.manifest())


def make_html_detail(case, rng, style, easy=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    doc = Doc('html', case, 'customer_detail', 'html', enc)
    ctx = Ctx(rng, easy)
    pairs = label_values(doc, ctx, 'corp' if (not easy and rng.random() < 0.25) else 'person')
    if style == 'dl':
        body = '<div class="card"><h3>客户基本信息</h3>\n<dl class="info">\n' + '\n'.join(
            f'  <dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>' for k, v in pairs) + '\n</dl></div>'
    else:
        body = '<h3>客户详细信息</h3>\n<table class="detail">\n' + '\n'.join(
            f'<tr><td class="label">{html.escape(k)}：</td><td class="value">{html.escape(v)}</td></tr>'
            for k, v in pairs) + '\n</table>'
    body += f'\n<p class="foot">打印时间 {G.timestamp(rng, ctx.day)}  第1页</p>'
    write_text(doc, html_page('客户信息', body, html_charset(enc)), rng)


def make_json_detail(case, rng, easy=None, pretty=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    pretty = (rng.random() < 0.6) if pretty is None else pretty
    enc = choose_encoding(rng, easy)
    doc = Doc('json', case, 'cust_detail', 'json', enc)
    ctx = Ctx(rng, easy)
    rec = new_person(ctx, True)
    passport_ = rec['kind'] == 'passport'
    cust = {'custNo': 'C' + G.digits(rng, 11), rng.choice(['custName', 'name']): rec['name'],
            'certType': '03' if passport_ else '01',
            'certTypeName': '护照' if passport_ else '居民身份证',
            rng.choice(['certNo', 'idNo', 'CertNo']): v_cert(doc, ctx, rec),
            rng.choice(['mobile', 'phoneNo', 'mobileNo']): v_mobile(doc, ctx),
            'telephone': G.landline(rng)}
    if rng.random() < 0.6:
        cust['email'] = v_email(doc, ctx, rec)
    cards = [{'cardNo': v_card(doc, ctx, rec), 'cardStatus': rng.choice(['正常', '挂失', '冻结']),
              'openBranch': G.branch_name(rng), 'openDate': G.rand_date(rng, 2010, 2024).isoformat()}
             for _ in range(rng.randint(1, 3))]
    data = {'custInfo': cust, 'cardList': cards}
    if not easy and rng.random() < 0.5:
        data['acctList'] = []
        for _ in range(rng.randint(1, 2)):
            num, bank = G.account(rng)
            data['acctList'].append({'acctNo': doc.add('CN_BANK_ACCOUNT', G.fmt_acct(num, ctx.acct_style)),
                                     'acctType': rng.choice(['定期一本通', '存折', '大额存单']),
                                     'balance': float(G.amount(rng, True).replace(',', ''))})
    if rng.random() < 0.5:
        data['recentOrders'] = [{'orderId': G.order_id(rng), 'serialNo': v_serial(doc, ctx),
                                 'amount': G.amount(rng), 'txnTime': G.timestamp(rng, ctx.day)}
                                for _ in range(rng.randint(1, 3))]
    obj = {'retCode': '000000', 'retMsg': '交易成功', 'serialNo': v_serial(doc, ctx),
           'branchNo': G.branch_code(rng), 'tellerNo': G.teller(rng), 'data': data}
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.15, indent=2 if pretty else None)
    write_text(doc, text + '\n', rng)


def make_xml_message(case, rng, easy=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    doc = Doc('xml', case, 'core_msg', 'xml', enc)
    ctx = Ctx(rng, easy)
    rec = new_person(ctx, True)
    code = rng.choice(['1001', '2001', '3105', '6201'])
    body = [f'<CustName>{rec["name"]}</CustName>',
            f'<IdType>{"03" if rec["kind"] == "passport" else "01"}</IdType>',
            f'<IdTypeName>{"护照" if rec["kind"] == "passport" else "居民身份证"}</IdTypeName>',
            '<{0}>{1}</{0}>'.format(rng.choice(['CertNo', 'IdNo']), v_cert(doc, ctx, rec))]
    if rng.random() < 0.7:
        body.append(f'<CardNo>{v_card(doc, ctx, rec)}</CardNo>')
    if not easy and rng.random() < 0.5:
        num, bank = G.account(rng)
        body.append(f'<AcctNo>{doc.add("CN_BANK_ACCOUNT", G.fmt_acct(num, ctx.acct_style))}</AcctNo>')
        body.append(f'<AcctBrName>{G.branch_name(rng, bank)}</AcctBrName>')
    body.append(f'<MobileNo>{v_mobile(doc, ctx)}</MobileNo>')
    if rng.random() < 0.3:
        body.append(f'<Email>{v_email(doc, ctx, rec)}</Email>')
    body += [f'<TxnAmt>{G.amount(rng).replace(",", "")}</TxnAmt>', '<Ccy>CNY</Ccy>',
             f'<VoucherNo>{v_voucher(doc, ctx)}</VoucherNo>']
    head = [f'<TxnCode>{code}</TxnCode>', f'<TxnSerialNo>{v_serial(doc, ctx)}</TxnSerialNo>',
            f'<TxnDate>{ctx.day.strftime("%Y%m%d")}</TxnDate>',
            f'<TxnTime>{rng.randint(80000, 175959)}</TxnTime>',
            f'<BranchNo>{G.branch_code(rng)}</BranchNo>', f'<TellerNo>{G.teller(rng)}</TellerNo>',
            f'<ChannelId>{rng.choice(["COUNTER", "01", "STM"])}</ChannelId>']
    if rng.random() < 0.5:   # one-line message
        text = xml_decl(enc) + '<Message><Head>' + ''.join(head) + '</Head><Body>' + ''.join(body) + '</Body></Message>\n'
    else:
        text = (xml_decl(enc) + '<Message>\n  <Head>\n' + ''.join(f'    {x}\n' for x in head)
                + '  </Head>\n  <Body>\n' + ''.join(f'    {x}\n' for x in body) + '  </Body>\n</Message>\n')
    write_text(doc, text, rng)


# =============================================================== builders: logs / forms
def make_kv_log(case, rng, easy=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    doc = Doc('kv', case, 'txn_service', 'log', enc)
    ctx = Ctx(rng, easy)
    lines = []
    t = datetime.datetime.combine(ctx.day, datetime.time(8, 30))
    for i in range(rng.randint(8, 80)):
        t += datetime.timedelta(seconds=rng.randint(1, 400))
        rec = new_person(ctx, False)
        kv = [('txnCode', rng.choice(['2001', '2002', '1101', '3005'])),
              ('serialNo', v_serial(doc, ctx))]
        r = rng.random()
        if r < 0.45:
            kv.append(('cardNo', v_card(doc, ctx, rec)))
        elif r < 0.7 and not easy:
            kv.append(('acctNo', v_acct(doc, ctx, rec, True)))
        if rng.random() < 0.5:
            kv.append(('custName', rec['name']))
            kv.append(('certType', '01'))
            kv.append(('certNo', v_cert(doc, ctx, rec)))
        if rng.random() < 0.3:
            kv.append(('mobile', v_mobile(doc, ctx)))
        kv += [('amt', G.amount(rng).replace(',', '')), ('brNo', G.branch_code(rng)),
               ('tellerNo', G.teller(rng)), ('rspCode', rng.choice(['0000', '0000', 'E102']))]
        level = 'INFO' if kv[-1][1] == '0000' else 'WARN'
        sep = ' ' if rng.random() < 0.7 else ', '
        lines.append(f'{t.isoformat(sep=" ")}.{rng.randint(0, 999):03d} [{level}] [TxnService-{rng.randint(1, 8)}] '
                     + sep.join(f'{k}={v}' for k, v in kv))
        if rng.random() < 0.1:
            lines.append(f'{t.isoformat(sep=" ")}.{rng.randint(0, 999):03d} [DEBUG] heartbeat ok, pending=0, batchId={G.batch_id(rng)}')
    write_text(doc, '\n'.join(lines) + '\n', rng)


def make_kv_form(case, rng, easy=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    doc = Doc('kv', case, 'form_export', 'txt', enc)
    ctx = Ctx(rng, easy)
    blocks = []
    for _ in range(rng.randint(1, 6)):
        pairs = label_values(doc, ctx, 'corp' if (not easy and rng.random() < 0.25) else 'person')
        colon = rng.choice(['：', ':', '： ', ' = '])
        title = rng.choice(['个人客户信息维护', '客户资料变更', '开户信息', '对公客户信息'])
        blocks.append(f'===== {title} =====\n' + '\n'.join(f'{k}{colon}{v}' for k, v in pairs))
    write_text(doc, '\n\n'.join(blocks) + '\n', rng)


def make_teller_journal(case, rng, easy=None):
    easy = (rng.random() < 0.45) if easy is None else easy
    enc = choose_encoding(rng, easy)
    doc = Doc('kv', case, 'teller_journal', 'log', enc)
    ctx = Ctx(rng, easy)
    tl = G.teller(rng)
    lines = [f'柜面交易日志  网点：{G.branch_name(rng)}  网点号：{G.branch_code(rng)}  柜员：{tl}  日期：{ctx.day.isoformat()}', '']
    t = datetime.datetime.combine(ctx.day, datetime.time(9, 0))
    for _ in range(rng.randint(6, 60)):
        t += datetime.timedelta(seconds=rng.randint(30, 900))
        rec = new_person(ctx, False)
        parts = [f'[{t.strftime("%H:%M:%S")}]', f'柜员{tl}', f'交易码{rng.choice(["1101", "2101", "3201", "8801"])}']
        r = rng.random()
        if r < 0.5:
            parts.append(f'卡号:{v_card(doc, ctx, rec)}')
        elif r < 0.75 and not easy:
            parts.append(f'账号:{v_acct(doc, ctx, rec, True)}')
        parts.append(f'户名:{rec["name"]}')
        if rng.random() < 0.4:
            parts.append(f'证件号码:{v_cert(doc, ctx, rec)}')
        if rng.random() < 0.2:
            parts.append(f'手机:{v_mobile(doc, ctx)}')
        parts += [f'金额:{G.amount(rng)}', f'流水号:{v_serial(doc, ctx)}']
        if rng.random() < 0.5:
            parts.append(f'凭证号:{v_voucher(doc, ctx)}')
        lines.append(' '.join(parts))
    lines += ['', f'本日交易笔数：{len(lines) - 2}    日终签退时间：17:{rng.randint(10, 59)}:{rng.randint(10, 59)}']
    write_text(doc, '\n'.join(lines) + '\n', rng)


def make_neg_text(case, rng, kind):
    """Documents with no customer data at all (only look-alike numbers)."""
    enc = choose_encoding(rng, rng.random() < 0.3)
    ext = {'kv': 'log', 'prose': 'txt', 'report': 'txt'}[kind]
    doc = Doc(kind, case, 'no_customer_data', ext, enc)
    ctx = Ctx(rng, False, luhn_neg_rate=0.5)
    day = ctx.day
    lines = []
    if kind == 'kv':
        for _ in range(rng.randint(10, 40)):
            lines.append(f'{G.timestamp(rng, day)} [INFO] batchId={G.batch_id(rng)} serialNo={v_serial(doc, ctx)} '
                         f'voucherNo={v_voucher(doc, ctx)} orderId={G.order_id(rng)} amt={G.amount(rng).replace(",", "")} '
                         f'brNo={G.branch_code(rng)} tellerNo={G.teller(rng)} invoiceNo={G.invoice_no(rng)}')
    elif kind == 'prose':
        bank = rng.choice(G.MAIN_BANKS)
        lines.append(f'{G.branch_name(rng, bank)}{day.month}月{day.day}日营业情况说明')
        lines.append(f'本网点当日共办理柜面业务{rng.randint(80, 400)}笔，起始流水号{v_serial(doc, ctx)}，'
                     f'终止流水号{v_serial(doc, ctx)}。重要空白凭证领用{rng.randint(5, 50)}张，凭证号码'
                     f'{v_voucher(doc, ctx)}至{v_voucher(doc, ctx)}。')
        lines.append(f'现金收入{G.amount(rng, True)}元，现金付出{G.amount(rng, True)}元，尾箱余额{G.amount(rng, True)}元。'
                     f'快递寄送单证运单号{G.tracking(rng)}，合同编号{G.rand18(rng)}。')
        lines.append(f'客户咨询请拨打{G.HOTLINES[bank]}或网点电话{G.landline(rng)}，'
                     f'发票号码{G.invoice_no(rng)}已开具。第 1 页 共 1 页')
    else:
        return make_eod(case, rng, neg_only=True)
    write_text(doc, '\n'.join(lines) + '\n', rng)


def make_eod(case, rng, neg_only=False):
    enc = choose_encoding(rng, rng.random() < 0.3)
    doc = Doc('report', case, 'eod_balancing', rng.choice(['txt', 'prn']), enc)
    ctx = Ctx(rng, False)
    org = G.branch_name(rng)
    tl = G.teller(rng)
    W = 96
    out = [pad('', 20) + f'{org}  日终轧账报表', f'机构号：{G.branch_code(rng)}  柜员号：{tl}  会计日期：{ctx.day.isoformat()}'
           + ' ' * 8 + '第 1 页', '=' * W]
    hdr = ['凭证种类', '起始号码', '终止号码', '张数', '金额']
    ws = [16, 22, 22, 8, 18]
    out.append(''.join(pad(h, w) for h, w in zip(hdr, ws)))
    out.append('-' * W)
    for _ in range(rng.randint(4, 12)):
        a = v_voucher(doc, ctx)
        out.append(''.join(pad(v, w) for v, w in zip(
            [rng.choice(['现金支票', '转账支票', '存单', '借记卡', '进账单', '电汇凭证']), a, v_voucher(doc, ctx),
             str(rng.randint(1, 50)), G.amount(rng, True)], ws)))
    out.append('-' * W)
    out.append(f'现金收入合计：{G.amount(rng, True):>16}    现金付出合计：{G.amount(rng, True):>16}')
    out.append(f'尾箱余额：{G.amount(rng, True):>16}    轧账结果：平')
    if not neg_only:
        out += ['', '大额交易明细（单笔5万元以上）', '-' * W]
        hdr2 = ['流水号', '户名', '账号', '金额', '交易时间']
        ws2 = [26, 12, 30, 16, 20]
        out.append(''.join(pad(h, w) for h, w in zip(hdr2, ws2)))
        for _ in range(rng.randint(2, 10)):
            rec = new_person(ctx, False)
            out.append(''.join(pad(v, w) for v, w in zip(
                [v_serial(doc, ctx), rec['name'], v_acct(doc, ctx, rec, True),
                 f'{rng.uniform(50000, 900000):,.2f}', G.timestamp(rng, ctx.day)], ws2)).rstrip())
    out += ['=' * W, f'打印时间：{G.timestamp(rng, ctx.day)}   柜员签章：________  主管签章：________   - 1 -']
    write_text(doc, '\n'.join(out) + '\n', rng)


# =============================================================== builders: prose
def make_prose(case, rng, easy=None):
    easy = (rng.random() < 0.35) if easy is None else easy
    enc = choose_encoding(rng, easy)
    doc = Doc('prose', case, {'prose_teller_note': 'teller_note', 'prose_complaint': 'complaint',
                              'prose_passport_earlier_label': 'passport_note',
                              'prose_card_no_word': 'payment_note',
                              'prose_account_bank_name': 'remittance_note'}[case], 'txt', enc)
    ctx = Ctx(rng, easy)
    day = ctx.day
    paras = []
    for _ in range(rng.randint(1, 4)):
        name, sp, gp = G.person_name(rng)
        rec = {'name': name, 'sp': sp, 'gp': gp}
        d = f'{day.year}年{day.month}月{day.day}日'
        if case == 'prose_teller_note':
            idv = doc.add('CN_RESIDENT_ID', G.id18(rng, want_x=rng.random() < 0.35))
            if idv.endswith('X') and rng.random() < 0.5:
                doc.ents[-1]['value'] = idv = idv[:-1] + 'x'
                doc.flags.add('lowercase_x')
            c = v_card(doc, ctx, rec)
            paras.append(rng.choice([
                lambda: f'{d} 柜员备注：客户{name}持本人身份证（{idv}）来我行办理借记卡挂失，原卡{c}已于当日冻结，'
                f'客户留存手机{v_mobile(doc, ctx)}。经办柜员{G.teller(rng)}，流水号{v_serial(doc, ctx)}。',
                lambda: f'备注：{name}，身份证号{idv}，因卡片消磁申请换卡，旧卡号 {c}，新卡待制卡后通知。'
                f'联系方式 {v_mobile(doc, ctx)}，授权主管{G.teller(rng)}。',
                lambda: f'{d}，客户{name}（证件号码：{idv}）反映银行卡{c}无法在ATM取款，已核实为密码错误锁定，'
                f'现场解锁。凭证号{v_voucher(doc, ctx)}。'])())
        elif case == 'prose_complaint':
            tail = G.card(rng)[0][-4:]
            em = v_email(doc, ctx, rec) if rng.random() < 0.6 else None
            paras.append(
                f'投诉登记（{d}）：客户{name}来电（{rng.choice(list(G.HOTLINES.values()))}转接）反映其尾号{tail}的银行卡于'
                f'{day.month}月{day.day - 1 if day.day > 1 else 1}日22:{rng.randint(10, 59)}被扣款{G.amount(rng)}元，'
                f'疑似盗刷。客户身份证号：{doc.add("CN_RESIDENT_ID", G.id18(rng))}，'
                f'回访电话：{v_mobile(doc, ctx)}' + (f'，邮箱：{em}' if em else '') +
                f'。工单号{G.order_id(rng)}，已转风险部门处理，承诺3个工作日内回复。')
        elif case == 'prose_passport_earlier_label':
            doc.flags.add('passport_label_earlier')
            p = doc.add('CN_PASSPORT', G.passport(rng))
            paras.append(rng.choice([
                lambda: f'{d}，华侨客户{name}申请开立个人账户，证件类型护照，证件号码{p}，有效期至{rng.randint(2027, 2034)}年{rng.randint(1, 12)}月，'
                f'已通过联网核查。',
                lambda: f'客户{name}出示中华人民共和国护照办理外币兑换，号码为{p}，兑换金额USD {rng.randint(1, 50) * 100}.00，'
                f'经办柜员{G.teller(rng)}。',
                lambda: f'备注：客户长期居住海外，本次以护照作为有效身份证件（号码 {p}）办理挂失，'
                f'联系电话{v_mobile(doc, ctx)}。',
                lambda: f'{name}使用护照开户，护照号：{p}，开户网点{G.branch_name(rng)}，流水号{v_serial(doc, ctx)}。'])())
        elif case == 'prose_card_no_word':
            doc.flags.add('card_no_word')
            ctx.card_style = rng.choice(['plain', 'space', 'space', 'hyphen'])
            c = v_card(doc, ctx, rec)
            paras.append(rng.choice([
                lambda: f'付款：{c}  金额：￥{G.amount(rng)}  {d}',
                lambda: f'请转至 {c} {name}，用途：还款',
                lambda: f'收款人 {name} {c} 金额 {G.amount(rng)} 元，备注 6月房租',
                lambda: f'{name}  {c}  已核实，同意代扣。',
                lambda: f'退款原路返回 {c}，预计3-5个工作日到账，订单号{G.order_id(rng)}。'])())
        elif case == 'prose_account_bank_name':
            doc.flags.add('acct_next_to_bank')
            comp = G.company_name(rng)
            num, bank = G.account(rng)
            a = doc.add('CN_BANK_ACCOUNT', G.fmt_acct(num, rng.choice(['plain', 'space'])))
            br = G.branch_name(rng, bank)
            paras.append(rng.choice([
                lambda: f'请将货款汇入：户名 {comp}，{br} {a}，汇款时请注明合同号{G.rand18(rng)}。',
                lambda: f'收款单位：{comp}  开户行：{br}  {a}',
                lambda: f'{comp}在{br}开立的基本存款账户{a}已于{d}完成变更，'
                f'统一社会信用代码{doc.add("CN_USCC", G.make_uscc(rng))}。',
                lambda: f'{br} {a} {comp} 付款金额 {G.amount(rng, True)} 元'])())
    write_text(doc, '\n\n'.join(paras) + '\n', rng)


# =============================================================== legacy exports
def make_legacy(case, rng, fmt):
    ctx_kw = {'legacy_rate': 0.8, 'acct_card_rate': 0, 'bad_id_rate': 0, 'id_years': (1932, 1983)}
    if fmt == 'csv':
        make_csv(case, rng, template='legacy', delim=rng.choice([',', '\t', '|']), easy=False,
                 ctx_kw=ctx_kw, stem='old_system_export', enc=rng.choice(['gbk', 'gb18030', 'utf-8']))
    else:
        make_report_table(case, rng, easy=False, template='legacy', ctx_kw=ctx_kw, stem='old_records',
                          title='老系统客户档案（1999年迁移）')


# =============================================================== plan
def build_all():
    rng = R
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    plan = []

    def rep(n, fn):
        plan.extend([fn] * n)

    # ---- CSV
    rep(20, lambda: make_csv('csv_header_row', rng, delim=','))
    rep(12, lambda: make_csv('csv_semicolon', rng, delim=';'))
    rep(12, lambda: make_csv('csv_tsv', rng, delim='\t'))
    rep(10, lambda: make_csv('csv_pipe', rng, delim='|'))
    rep(10, lambda: make_csv('csv_quoted_commas', rng, delim=',', quote_all=rng.random() < 0.5,
                             template=rng.choice(['txn', 'contacts', 'payroll', 'corp_txn', 'loan'])))
    rep(10, lambda: make_csv('csv_excel_apostrophe', rng, delim=',', apostrophe=True))
    rep(12, lambda: make_csv('csv_english_headers', rng, delim=rng.choice([',', ',', ';', '\t']), lang='en'))
    rep(10, lambda: make_csv('csv_corporate', rng, delim=rng.choice([',', '\t', '|']),
                             template=rng.choice(['corp', 'corp_txn'])))
    rep(8, lambda: make_csv('csv_acct_column_card', rng, delim=',', easy=False,
                            template=rng.choice(['payroll', 'loan', 'txn_acct'])))
    rep(10, lambda: make_csv('csv_cert_type_mix', rng, delim=rng.choice([',', '\t']), easy=False,
                             template=rng.choice(['customers', 'loan', 'kyc']), ctx_kw={'passport_rate': 0.35}))
    rep(10, lambda: make_csv('csv_negatives_only', rng, delim=rng.choice([',', ';', '\t', '|']), easy=False,
                             template=rng.choice(NEG_TEMPLATES), ctx_kw={'luhn_neg_rate': 0.4}))
    rep(8, lambda: make_legacy('csv_legacy_ids', rng, 'csv'))
    plan.append(lambda: make_csv('csv_large', rng, template='customers', delim=',', easy=False, nrows=3000,
                                 enc='utf-8', stem='customers_full'))
    plan.append(lambda: make_csv('csv_large', rng, template='txn', delim='\t', easy=False, nrows=5000,
                                 enc='gbk', stem='txn_full', ctx_kw={'luhn_neg_rate': 0.3}))
    plan.append(lambda: make_csv('csv_large', rng, template='payroll', delim=',', easy=False, nrows=2000,
                                 enc='utf-16', stem='payroll_full', apostrophe=True))
    # ---- XLSX
    rep(12, lambda: make_xlsx('xlsx_header_row', rng))
    rep(12, lambda: make_xlsx('xlsx_title_row', rng, title=True))
    rep(12, lambda: make_xlsx('xlsx_multi_sheet', rng, sheets=rng.randint(2, 4), title=rng.random() < 0.4))
    rep(5, lambda: make_xlsx('xlsx_negatives_only', rng, neg=True, sheets=rng.randint(1, 2), easy=False,
                             template=rng.choice(NEG_TEMPLATES), ctx_kw={'luhn_neg_rate': 0.4}))
    rep(4, lambda: make_xlsx('xlsx_corporate', rng, template='corp', title=rng.random() < 0.5))
    plan.append(lambda: make_xlsx('xlsx_large', rng, template='customers', nrows=2000, easy=False, title=True))
    plan.append(lambda: make_xlsx('xlsx_large', rng, template='payroll', nrows=1200, easy=False))
    # ---- DOCX
    rep(12, lambda: make_docx_letter('docx_letter', rng))
    rep(14, lambda: make_docx_form('docx_form_label_left', rng))
    rep(10, lambda: make_docx_table('docx_table_header', rng))
    rep(4, lambda: make_docx_table('docx_negatives_only', rng, neg=True, easy=False))
    # ---- HTML
    rep(22, lambda: make_html_list('html_list_table', rng))
    rep(6, lambda: make_html_list('html_list_no_thead', rng, thead=False))
    rep(10, lambda: make_html_detail('html_detail_dl', rng, 'dl'))
    rep(12, lambda: make_html_detail('html_detail_td', rng, 'td'))
    rep(4, lambda: make_html_list('html_negatives_only', rng, template=rng.choice(NEG_TEMPLATES), easy=False,
                                  ctx_kw={'luhn_neg_rate': 0.4}))
    plan.append(lambda: make_html_list('html_large', rng, template='customers', nrows=1000, easy=False))
    # ---- JSON
    rep(14, lambda: make_json_list('json_list_pretty', rng, pretty=True))
    rep(12, lambda: make_json_list('json_list_oneline', rng, pretty=False))
    rep(16, lambda: make_json_detail('json_nested_detail', rng))
    rep(5, lambda: make_json_list('json_ascii_escaped', rng, pretty=rng.random() < 0.5, ascii_=True))
    rep(6, lambda: make_json_list('json_negatives_only', rng, template=rng.choice(NEG_TEMPLATES), easy=False,
                                  ctx_kw={'luhn_neg_rate': 0.4}))
    rep(4, lambda: make_json_list('json_corporate', rng, template='corp', pretty=rng.random() < 0.5))
    # ---- XML
    rep(18, lambda: make_xml_message('xml_core_message', rng))
    rep(16, lambda: make_xml_batch('xml_batch', rng))
    rep(5, lambda: make_xml_batch('xml_corporate', rng, template=rng.choice(['corp', 'corp_txn'])))
    rep(6, lambda: make_xml_batch('xml_negatives_only', rng, template=rng.choice(NEG_TEMPLATES), easy=False,
                                  ctx_kw={'luhn_neg_rate': 0.4}))
    # ---- key=value / key：value
    rep(15, lambda: make_kv_log('kv_equals_log', rng))
    rep(15, lambda: make_kv_form('kv_colon_form', rng))
    rep(15, lambda: make_teller_journal('kv_teller_journal', rng))
    rep(5, lambda: make_neg_text('kv_negatives_only', rng, 'kv'))
    # ---- fixed-width reports
    rep(14, lambda: make_report_table('report_customer_list', rng,
                                      template=rng.choice(['customers', 'customers_simple', 'kyc', 'contacts'])))
    rep(12, lambda: make_report_table('report_txn_detail', rng, template=rng.choice(['txn', 'txn_acct', 'payroll', 'corp_txn'])))
    rep(6, lambda: make_report_table('report_repeated_page_header', rng, repeat_header=True,
                                     nrows=rng.randint(90, 180), easy=False))
    rep(8, lambda: make_eod('report_eod_balancing', rng))
    rep(4, lambda: make_eod('report_eod_negatives_only', rng, neg_only=True))
    rep(6, lambda: make_legacy('report_legacy_printout', rng, 'report'))
    plan.append(lambda: make_report_table('report_large', rng, template='customers', nrows=1500, easy=False,
                                          repeat_header=False, title='客户信息清单（全量）'))
    plan.append(lambda: make_report_table('report_large', rng, template='txn_acct', nrows=1200, easy=False,
                                          repeat_header=True, title='交易明细清单（月度）'))
    # ---- prose
    rep(12, lambda: make_prose('prose_teller_note', rng))
    rep(10, lambda: make_prose('prose_complaint', rng))
    rep(10, lambda: make_prose('prose_passport_earlier_label', rng))
    rep(10, lambda: make_prose('prose_card_no_word', rng))
    rep(10, lambda: make_prose('prose_account_bank_name', rng))
    rep(5, lambda: make_neg_text('prose_negatives_only', rng, 'prose'))

    for fn in plan:
        fn()
    with (OUT / 'manifest.jsonl').open('w', encoding='utf-8', newline='\n') as f:
        for m in MANIFEST:
            f.write(json.dumps(m, ensure_ascii=False) + '\n')
    print(f'wrote {len(MANIFEST)} documents to {OUT}')


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--check', action='store_true', help='run check_documents.py afterwards')
    a = ap.parse_args()
    build_all()
    if a.check:
        import check_documents
        sys.exit(check_documents.main([str(OUT)]))
