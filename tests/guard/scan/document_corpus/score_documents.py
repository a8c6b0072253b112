#!/usr/bin/env python3
"""Score a scanner against the corpus2 labels.

    python score_documents.py DOCS_DIR --cmd "teller-guard scan --format json" [--json-out PATH]

The command is run ONCE with every document path appended.  Its stdout must be JSON Lines, one
object per file: {"source": PATH, "findings": [{"type": T, "masked": M, ...}], "error": optional}.
Exit status 0 (nothing found), 1 (found) and 2 (some input failed) are all normal.

Matching, per file, as a multiset (each label and each finding is used at most once):
  pass 1 (the rule): same type, and the last 4 characters of the finding's masked value equal the
         last 4 alphanumeric characters of the labelled value, both uppercased
         ("6222********0128" matches "6222 0212 3456 7890 128").
  pass 2 (only for findings left unmatched, to tolerate other mask layouts): same type, and
         either the last 4 alphanumeric characters of the masked value equal the label's
         ("138 **** 5678 " / "...0128)"), or the literal last 4 characters equal the literal last
         4 of the labelled value (e-mail masks such as "z***@qq.com" end in ".COM").
Only the last 4 characters of any value are ever printed.

Findings whose type is not one of the labelled types are listed separately and are not counted
in precision unless --strict-types is given.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

TYPES = ['CN_RESIDENT_ID', 'BANK_CARD', 'CN_MOBILE', 'EMAIL', 'CN_USCC', 'CN_PASSPORT',
         'CN_BANK_ACCOUNT']


def tail_key(s: str) -> str:
    """Last 4 alphanumeric characters, uppercased."""
    alnum = re.sub(r'[^0-9A-Za-z]', '', s or '')
    return alnum[-4:].upper()


def masked_key(m: str) -> str:
    m = (m or '').strip()
    # masks like "6222 **** **** 0128" or "44030********1234": the visible tail decides
    return tail_key(m)


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def load_manifest(docs: Path):
    out = []
    with (docs / 'manifest.jsonl').open(encoding='utf-8') as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def run_scan(cmd: str, paths: list[str], timeout: float):
    argv = shlex.split(cmd) + paths
    proc = subprocess.run(argv, capture_output=True, timeout=timeout)
    if proc.returncode not in (0, 1, 2, 3):
        sys.stderr.write(proc.stderr.decode('utf-8', 'replace')[-4000:])
        raise SystemExit(f'scan command failed with exit status {proc.returncode}')
    results = []
    bad_lines = 0
    for line in proc.stdout.decode('utf-8', 'replace').splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad_lines += 1
            continue
        if isinstance(obj, dict):
            results.append(obj)
    return proc.returncode, results, bad_lines, proc.stderr.decode('utf-8', 'replace')


def main(argv=None):
    if hasattr(signal, 'SIGPIPE'):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('docs', help='documents directory containing manifest.jsonl')
    ap.add_argument('--cmd', required=True, help='scan command; document paths are appended')
    ap.add_argument('--json-out', help='write the summary as JSON here')
    ap.add_argument('--timeout', type=float, default=3600)
    ap.add_argument('--strict-types', action='store_true',
                    help='count findings of unlabelled types as false alarms')
    ap.add_argument('--max-list', type=int, default=100000,
                    help='print at most this many misses / false alarms each')
    a = ap.parse_args(argv)

    docs = Path(a.docs)
    manifest = load_manifest(docs)
    paths = [str((docs / m['file']).resolve()) for m in manifest]
    by_real = {os.path.realpath(p): m for p, m in zip(paths, manifest)}
    by_rel = {m['file']: m for m in manifest}

    rc, results, bad_lines, stderr = run_scan(a.cmd, paths, a.timeout)

    findings_by_file = collections.defaultdict(list)
    errors = {}
    unmatched_sources = []
    for obj in results:
        src = obj.get('source') or obj.get('path') or ''
        m = by_real.get(os.path.realpath(src))
        if m is None:
            rel = src.replace('\\', '/')
            m = next((mm for f, mm in by_rel.items() if rel.endswith(f)), None)
        if m is None:
            unmatched_sources.append(src)
            continue
        findings_by_file[m['file']].extend(obj.get('findings') or [])
        if obj.get('error'):
            errors[m['file']] = str(obj['error'])
    seen = set(findings_by_file) | set(errors)
    reported = {os.path.realpath(r.get('source') or '') for r in results}
    no_output = [m['file'] for p, m in zip(paths, manifest) if os.path.realpath(p) not in reported
                 and m['file'] not in seen]

    tp = collections.Counter()
    fp = collections.Counter()
    fn = collections.Counter()
    hard_c = collections.Counter()
    small_c = collections.Counter()   # files whose case is not *_large
    case_tot = collections.Counter()
    case_hit = collections.Counter()
    kind_c = collections.defaultdict(collections.Counter)
    misses = []
    false_alarms = []
    other_types = collections.Counter()

    for m in manifest:
        f = m['file']
        labels = [(e['type'], tail_key(e['value']), e['value'][-4:].upper()) for e in m['entities']]
        used = [False] * len(labels)
        by_key = collections.defaultdict(list)      # (type, key) -> label indexes, primary key
        by_lit = collections.defaultdict(list)      # (type, literal last 4 of value)
        for i, (t, k, lit) in enumerate(labels):
            by_key[(t, k)].append(i)
            by_lit[(t, lit)].append(i)

        def take(bucket):
            for i in bucket:
                if not used[i]:
                    used[i] = True
                    return i
            return None

        extra = []
        finds = []
        for fd in findings_by_file.get(f, []):
            t = fd.get('type')
            if t not in TYPES and not a.strict_types:
                other_types[t] += 1
                continue
            finds.append((t, str(fd.get('masked') or '')))
        # pass 1: literal last 4 of the masked value vs last 4 alphanumerics of the label (the rule)
        rest = []
        for t, mk in finds:
            if take(by_key.get((t, mk[-4:].upper()), ())) is None:
                rest.append((t, mk))
        # pass 2: tolerant keys (last 4 alphanumerics of the masked value; literal tails)
        for t, mk in rest:
            i = take(by_key.get((t, masked_key(mk)), ()))
            if i is None:
                i = take(by_lit.get((t, mk[-4:].upper()), ()))
            if i is None:
                extra.append((t, masked_key(mk) or mk[-4:]))
        for i, (t, k, _) in enumerate(labels):
            if used[i]:
                tp[t] += 1
                case_hit[m['case']] += 1
                kind_c[m['kind']]['tp'] += 1
                if m['hard']:
                    hard_c['tp'] += 1
                if not m['case'].endswith('_large'):
                    small_c['tp'] += 1
            else:
                fn[t] += 1
                kind_c[m['kind']]['fn'] += 1
                if m['hard']:
                    hard_c['fn'] += 1
                if not m['case'].endswith('_large'):
                    small_c['fn'] += 1
                misses.append((t, m['case'], f, k))
        for t, k in extra:
            fp[t] += 1
            kind_c[m['kind']]['fp'] += 1
            if m['hard']:
                hard_c['fp'] += 1
            if not m['case'].endswith('_large'):
                small_c['fp'] += 1
            false_alarms.append((t, m['case'], f, k))
        case_tot[m['case']] += len(labels)

    types = TYPES + sorted(t for t in set(fp) | set(tp) if t not in TYPES)
    per_type = {}
    print(f'scan exit status: {rc}; result lines: {len(results)}; unparsable lines: {bad_lines}')
    print(f'files: {len(manifest)} ({sum(m["hard"] for m in manifest)} hard); '
          f'labels: {sum(len(m["entities"]) for m in manifest)}')
    print()
    print(f'{"type":<18}{"labels":>8}{"tp":>8}{"fp":>8}{"fn":>8}{"prec":>8}{"recall":>8}{"f1":>8}')
    for t in types:
        p, r, f1 = prf(tp[t], fp[t], fn[t])
        per_type[t] = {'labels': tp[t] + fn[t], 'tp': tp[t], 'fp': fp[t], 'fn': fn[t],
                       'precision': round(p, 4), 'recall': round(r, 4), 'f1': round(f1, 4)}
        print(f'{t:<18}{tp[t] + fn[t]:>8}{tp[t]:>8}{fp[t]:>8}{fn[t]:>8}{p:>8.3f}{r:>8.3f}{f1:>8.3f}')
    TP, FP, FN = sum(tp.values()), sum(fp.values()), sum(fn.values())
    mp, mr, mf = prf(TP, FP, FN)
    hp, hr, hf = prf(hard_c['tp'], hard_c['fp'], hard_c['fn'])
    print(f'{"MICRO":<18}{TP + FN:>8}{TP:>8}{FP:>8}{FN:>8}{mp:>8.3f}{mr:>8.3f}{mf:>8.3f}')
    print(f'{"MICRO (hard)":<18}{hard_c["tp"] + hard_c["fn"]:>8}{hard_c["tp"]:>8}{hard_c["fp"]:>8}'
          f'{hard_c["fn"]:>8}{hp:>8.3f}{hr:>8.3f}{hf:>8.3f}')
    sp, sr, sf = prf(small_c['tp'], small_c['fp'], small_c['fn'])
    print(f'{"MICRO (no large)":<18}{small_c["tp"] + small_c["fn"]:>8}{small_c["tp"]:>8}{small_c["fp"]:>8}'
          f'{small_c["fn"]:>8}{sp:>8.3f}{sr:>8.3f}{sf:>8.3f}')
    print()
    print('per-kind micro:')
    per_kind = {}
    for k in sorted(kind_c):
        c = kind_c[k]
        p, r, f1 = prf(c['tp'], c['fp'], c['fn'])
        per_kind[k] = {'tp': c['tp'], 'fp': c['fp'], 'fn': c['fn'], 'precision': round(p, 4),
                       'recall': round(r, 4), 'f1': round(f1, 4)}
        print(f'  {k:<10} tp={c["tp"]:<6} fp={c["fp"]:<6} fn={c["fn"]:<6} P={p:.3f} R={r:.3f} F1={f1:.3f}')
    print()
    print('per-case recall:')
    per_case = {}
    cases = sorted({m['case'] for m in manifest})
    fp_by_case = collections.Counter(c for _, c, _, _ in false_alarms)
    for c in cases:
        tot = case_tot[c]
        rec = case_hit[c] / tot if tot else None
        per_case[c] = {'labels': tot, 'tp': case_hit[c], 'recall': None if rec is None else round(rec, 4),
                       'false_alarms': fp_by_case[c]}
        rs = '   n/a' if rec is None else f'{rec:6.3f}'
        print(f'  {c:<34} labels={tot:<6} recall={rs}  false_alarms={fp_by_case[c]}')
    print()
    print(f'misses ({len(misses)}):')
    for t, c, f, k in misses[:a.max_list]:
        print(f'  MISS  {t:<16} {c:<32} {f}  ...{k}')
    print(f'false alarms ({len(false_alarms)}):')
    for t, c, f, k in false_alarms[:a.max_list]:
        print(f'  FALSE {t:<16} {c:<32} {f}  ...{k}')
    if other_types:
        print(f'findings of unlabelled types (not scored): {dict(other_types)}')
    if errors:
        print(f'files with an error ({len(errors)}):')
        for f, e in errors.items():
            print(f'  ERROR {f}: {e[:200]}')
    if no_output:
        print(f'files with no output line ({len(no_output)}):')
        for f in no_output[:a.max_list]:
            print(f'  NOOUT {f}')
    if unmatched_sources:
        print(f'output lines for unknown sources: {len(unmatched_sources)}')

    summary = {
        'scan_exit_status': rc, 'files': len(manifest),
        'hard_files': sum(m['hard'] for m in manifest),
        'labels': sum(len(m['entities']) for m in manifest),
        'per_type': per_type,
        'micro': {'tp': TP, 'fp': FP, 'fn': FN, 'precision': round(mp, 4), 'recall': round(mr, 4),
                  'f1': round(mf, 4)},
        'micro_hard': {'tp': hard_c['tp'], 'fp': hard_c['fp'], 'fn': hard_c['fn'],
                       'precision': round(hp, 4), 'recall': round(hr, 4), 'f1': round(hf, 4)},
        'micro_excluding_large_files': {'tp': small_c['tp'], 'fp': small_c['fp'], 'fn': small_c['fn'],
                                        'precision': round(sp, 4), 'recall': round(sr, 4), 'f1': round(sf, 4)},
        'per_kind': per_kind, 'per_case': per_case,
        'misses': [{'type': t, 'case': c, 'file': f, 'last4': k} for t, c, f, k in misses],
        'false_alarms': [{'type': t, 'case': c, 'file': f, 'last4': k} for t, c, f, k in false_alarms],
        'unscored_types': dict(other_types),
        'errors': errors, 'no_output': no_output, 'unparsable_lines': bad_lines,
    }
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main())
