#!/usr/bin/env python3
"""Sanity checks for the corpus2 documents.

    python check_documents.py [DOCS_DIR]

* every labelled value occurs in its file exactly as written, at least as often as labelled
  (occurrences bounded by non-alphanumerics);
* CN_RESIDENT_ID: 18-char values pass stdnum.cn.ric; 15-char legacy values are
  region(6)+YYMMDD(valid date)+seq(3); BANK_CARD: Luhn + real BIN with that length;
  CN_USCC: stdnum.cn.uscc; CN_MOBILE: 11-digit mainland number after stripping +86/0086;
  CN_PASSPORT: E/G+8 digits or E+letter+7 digits; CN_BANK_ACCOUNT: 8-25 digits, not a card;
* BOMs present for utf-8-sig / utf-16; GBK files decode;
* warns about unlabelled strings that would be valid IDs / USCCs (accidental positives).
Exit 0 when all checks pass.
"""
from __future__ import annotations

import collections
import datetime
import json
import re
import sys
from pathlib import Path

from stdnum import luhn
from stdnum.cn import ric, uscc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_values as G  # noqa: E402

MOBILE_PREFIX = set(G.MOBILE_PREFIXES)


def extract_text(path: Path, encoding: str) -> str:
    if path.suffix == '.xlsx':
        import openpyxl
        wb = openpyxl.load_workbook(path, read_only=True)
        parts = []
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                parts.append('\t'.join('' if v is None else str(v) for v in row))
        return '\n'.join(parts)
    if path.suffix == '.docx':
        import docx
        d = docx.Document(path)
        parts = [p.text for p in d.paragraphs]
        for t in d.tables:
            for row in t.rows:
                parts.append('\t'.join(c.text for c in row.cells))
        return '\n'.join(parts)
    raw = path.read_bytes()
    if encoding == 'utf-8-sig' and not raw.startswith(b'\xef\xbb\xbf'):
        raise ValueError('utf-8-sig without BOM')
    if encoding == 'utf-16' and raw[:2] not in (b'\xff\xfe', b'\xfe\xff'):
        raise ValueError('utf-16 without BOM')
    if encoding == 'utf-8' and raw.startswith(b'\xef\xbb\xbf'):
        raise ValueError('utf-8 file has a BOM')
    return raw.decode(encoding)


class Occurrences:
    """Counts occurrences of a value bounded by non-alphanumerics, in linear time."""
    RUN = re.compile(r'[0-9A-Za-z]+')

    def __init__(self, text):
        self.text = text
        self.runs = collections.defaultdict(list)
        for m in self.RUN.finditer(text):
            self.runs[m.group()].append(m.start())

    def count(self, value):
        m = self.RUN.search(value)
        if not m:
            return 0
        lead = value[:m.start()]
        n = 0
        for pos in self.runs.get(m.group(), ()):
            start = pos - len(lead)
            if start < 0 or not self.text.startswith(value, start):
                continue
            end = start + len(value)
            if end < len(self.text) and self.text[end].isascii() and self.text[end].isalnum():
                continue
            n += 1
        return n


def validate_entity(typ: str, value: str) -> str | None:
    digits = re.sub(r'[ \-]', '', value)
    if typ == 'CN_RESIDENT_ID':
        if len(value) == 18:
            return None if G.ric_valid(value) else 'ric invalid'
        if len(value) == 15 and value.isdigit():
            try:
                datetime.date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]))
            except ValueError:
                return 'legacy id bad date'
            return None
        return 'bad id length'
    if typ == 'BANK_CARD':
        return None if G.is_card_number(digits) else 'not luhn+bin card'
    if typ == 'CN_USCC':
        return None if uscc.is_valid(value) else 'uscc invalid'
    if typ == 'CN_MOBILE':
        d = re.sub(r'^(\+86|0086)', '', digits)
        return None if (len(d) == 11 and d.isdigit() and d[:3] in MOBILE_PREFIX) else 'bad mobile'
    if typ == 'CN_PASSPORT':
        return None if re.fullmatch(r'[EG]\d{8}|E[A-HJ-NP-Z]\d{7}', value) else 'bad passport'
    if typ == 'CN_BANK_ACCOUNT':
        if not (digits.isdigit() and 8 <= len(digits) <= 25):
            return 'bad account'
        return 'account is a card number' if G.is_card_number(digits) else None
    if typ == 'EMAIL':
        return None if re.fullmatch(r'[\w.+-]+@[\w-]+(\.[\w-]+)+', value) else 'bad email'
    return 'unknown type'


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    docs = Path(argv[0] if argv else Path(__file__).resolve().parent / 'documents')
    errors = []
    warnings = []
    n_files = n_ents = 0
    for line in (docs / 'manifest.jsonl').read_text(encoding='utf-8').splitlines():
        m = json.loads(line)
        n_files += 1
        path = docs / m['file']
        try:
            text = extract_text(path, m['encoding'])
        except Exception as e:  # noqa: BLE001
            errors.append(f'{m["file"]}: cannot read: {e}')
            continue
        need = collections.Counter(e['value'] for e in m['entities'])
        occ = Occurrences(text)
        for value, k in need.items():
            got = occ.count(value)
            if got != k:
                errors.append(f'{m["file"]}: value ...{value[-4:]} labelled {k}x, found {got}x')
        for e in m['entities']:
            n_ents += 1
            err = validate_entity(e['type'], e['value'])
            if err:
                errors.append(f'{m["file"]}: {e["type"]} ...{e["value"][-4:]}: {err}')
        labelled = {re.sub(r'[ \-]', '', e['value']).upper() for e in m['entities']}
        for cand in set(re.findall(r'(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])', text)):
            if G.ric_valid(cand) and cand.upper() not in labelled:
                warnings.append(f'{m["file"]}: unlabelled valid resident ID ...{cand[-4:]}')
        for cand in set(re.findall(r'(?<![0-9A-Za-z])([0-9A-Z]{18})(?![0-9A-Za-z])', text)):
            if not cand.isdigit() and uscc.is_valid(cand) and cand not in labelled:
                warnings.append(f'{m["file"]}: unlabelled valid USCC ...{cand[-4:]}')
    for e in errors:
        print('ERROR', e)
    for w in warnings:
        print('WARN ', w)
    print(f'checked {n_files} files, {n_ents} entities: {len(errors)} errors, {len(warnings)} warnings')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
