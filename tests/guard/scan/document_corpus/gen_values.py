"""Synthetic value generators for corpus2 (identifiers belong to nobody).

Everything draws from a random.Random passed in, so the corpus is deterministic.
"""
from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path

from stdnum import luhn
from stdnum.cn import ric, uscc

REPO = Path(__file__).resolve().parents[4]
BIN_CSV = REPO / 'resources' / 'data' / 'cn-card-bins.csv'
BANK_CSV = REPO / 'resources' / 'data' / 'cn-bank-names.csv'

# ---------------------------------------------------------------- reference data
BANK_NAMES = {}
with BANK_CSV.open(encoding='utf-8') as f:
    for row in csv.DictReader(f):
        BANK_NAMES[row['bank']] = row['name']

ALL_BINS = []          # (bin, bank, type, length) for every row
with BIN_CSV.open(encoding='utf-8') as f:
    for row in csv.DictReader(f):
        ALL_BINS.append((row['bin'], row['bank'], row['type'], int(row['length'])))
BIN_SET = {(b, n) for b, _, _, n in ALL_BINS}
SIX_BINS = [r for r in ALL_BINS if len(r[0]) == 6 and 16 <= r[3] <= 19]
BIG_BANKS = {'ICBC', 'CCB', 'ABC', 'BOC', 'CMB', 'COMM', 'PSBC', 'SPDB', 'CIB', 'CMBC',
             'CITIC', 'CEB', 'SPABANK', 'GDB', 'HXBANK'}
COMMON_BINS = [r for r in SIX_BINS if r[1] in BIG_BANKS]


def _load_regions():
    path = Path(ric.__file__).with_name('loc.dat')
    stable = []
    prov = None
    for line in path.read_text(encoding='utf-8').splitlines():
        m = re.match(r'^(\d\d) province=', line)
        if m:
            prov = m.group(1)
            continue
        m = re.match(r'^  (\d{4}) county="([^"]*)"', line)
        if m and prov and not m.group(2).startswith('[') and not m.group(1).endswith('00') \
                and m.group(2) != '市辖区':
            stable.append(prov + m.group(1))
    return stable


STABLE_REGIONS = _load_regions()
# Well-known districts (valid only for later birth years; generator retries)
POPULAR_REGIONS = ('440304 440305 440303 440306 440307 440106 440104 110105 110108 110102 '
                   '310115 310104 330106 320102 510104 510107 420106 430104 610113 370202 '
                   '350203 120101 210102 230103 410105 340104 360102 450103 530102 520102 '
                   '440981 441302 445102 360426 130102 150102 620102 330382 350583 441900 '
                   '442000 370102 320583 330205 350102 210202').split()

SURNAMES = [('张', 'zhang'), ('王', 'wang'), ('李', 'li'), ('刘', 'liu'), ('陈', 'chen'),
            ('杨', 'yang'), ('黄', 'huang'), ('赵', 'zhao'), ('吴', 'wu'), ('周', 'zhou'),
            ('徐', 'xu'), ('孙', 'sun'), ('马', 'ma'), ('朱', 'zhu'), ('胡', 'hu'),
            ('郭', 'guo'), ('何', 'he'), ('林', 'lin'), ('罗', 'luo'), ('高', 'gao'),
            ('郑', 'zheng'), ('梁', 'liang'), ('谢', 'xie'), ('宋', 'song'), ('唐', 'tang'),
            ('邓', 'deng'), ('冯', 'feng'), ('韩', 'han'), ('曹', 'cao'), ('彭', 'peng'),
            ('欧阳', 'ouyang'), ('司马', 'sima')]
GIVEN = [('伟', 'wei'), ('芳', 'fang'), ('娜', 'na'), ('敏', 'min'), ('静', 'jing'),
         ('丽', 'li'), ('强', 'qiang'), ('磊', 'lei'), ('军', 'jun'), ('洋', 'yang'),
         ('勇', 'yong'), ('艳', 'yan'), ('杰', 'jie'), ('娟', 'juan'), ('涛', 'tao'),
         ('明', 'ming'), ('超', 'chao'), ('秀英', 'xiuying'), ('霞', 'xia'), ('平', 'ping'),
         ('刚', 'gang'), ('桂英', 'guiying'), ('建华', 'jianhua'), ('志强', 'zhiqiang'),
         ('海燕', 'haiyan'), ('文', 'wen'), ('思琪', 'siqi'), ('子涵', 'zihan'),
         ('浩然', 'haoran'), ('雨萱', 'yuxuan'), ('俊', 'jun'), ('欣怡', 'xinyi'),
         ('国庆', 'guoqing'), ('红梅', 'hongmei'), ('晓东', 'xiaodong'), ('丹', 'dan'),
         ('宇航', 'yuhang'), ('佳怡', 'jiayi'), ('建国', 'jianguo'), ('淑珍', 'shuzhen')]

CITIES = {'深圳': ['福田', '南山', '罗湖', '宝安', '龙岗'], '广州': ['天河', '越秀', '海珠'],
          '北京': ['朝阳', '海淀', '西城', '东城'], '上海': ['浦东', '徐汇', '静安'],
          '杭州': ['西湖', '滨江'], '成都': ['锦江', '武侯'], '武汉': ['武昌', '江汉'],
          '南京': ['玄武', '鼓楼'], '厦门': ['思明', '湖里'], '西安': ['雁塔', '碑林']}
ROADS = ['深南大道', '福华三路', '科技园路', '建设路', '人民路', '解放路', '中山路', '长安街',
         '南京东路', '天府大道', '滨海大道', '华强北路', '体育西路']
BRAND = ['华信', '恒达', '誉丰', '鼎盛', '汇通', '瑞祥', '宏图', '金源', '新锐', '博远',
         '中科', '远航', '嘉禾', '万隆', '天成', '启明']
INDUSTRY = ['科技', '贸易', '物流', '电子', '建设工程', '餐饮管理', '医疗器械', '信息技术',
            '实业', '文化传媒', '供应链管理', '机械设备']
MAIN_BANKS = ['中国工商银行', '中国建设银行', '中国农业银行', '中国银行', '招商银行',
              '交通银行', '中国邮政储蓄银行', '平安银行', '兴业银行', '上海浦东发展银行']
HOTLINES = {'中国工商银行': '95588', '中国建设银行': '95533', '中国农业银行': '95599',
            '中国银行': '95566', '招商银行': '95555', '交通银行': '95559',
            '中国邮政储蓄银行': '95580', '平安银行': '95511', '兴业银行': '95561',
            '上海浦东发展银行': '95528'}
MOBILE_PREFIXES = ([str(x) for x in range(130, 140)] + ['145', '146', '147', '148', '149'] +
                   ['150', '151', '152', '153', '155', '156', '157', '158', '159'] +
                   ['162', '165', '166', '167'] + [str(x) for x in range(170, 179)] +
                   [str(x) for x in range(180, 190)] + [str(x) for x in range(190, 200)])
EMAIL_DOMAINS = ['qq.com', '163.com', '126.com', 'sina.com', 'gmail.com', 'foxmail.com',
                 'hotmail.com', 'yeah.net', 'outlook.com', '139.com', 'aliyun.com']
USCC_ALPHA = '0123456789ABCDEFGHJKLMNPQRTUWXY'


def ric_valid(num: str) -> bool:
    """stdnum.cn.ric.is_valid, but some region prefixes make stdnum raise KeyError."""
    try:
        return ric.is_valid(num)
    except Exception:  # noqa: BLE001
        return False


def digits(rng, n, first=None):
    s = ''.join(rng.choice('0123456789') for _ in range(n))
    if first is not None:
        s = first + s[1:]
    return s


def is_card_number(num: str) -> bool:
    """Luhn-valid and begins with a real BIN whose full length equals len(num)."""
    if not num.isdigit() or not 16 <= len(num) <= 19 or not luhn.is_valid(num):
        return False
    return any((num[:k], len(num)) in BIN_SET for k in range(3, 10))


def group4(s, sep=' '):
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------- identifiers
def rand_date(rng, y0, y1):
    start = datetime.date(y0, 1, 1).toordinal()
    end = datetime.date(y1, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(start, end))


def id18(rng, want_x=None, y0=1950, y1=2006):
    for _ in range(10000):
        region = rng.choice(POPULAR_REGIONS) if rng.random() < 0.6 else rng.choice(STABLE_REGIONS)
        d = rand_date(rng, y0, y1)
        body = region + d.strftime('%Y%m%d') + digits(rng, 3)
        num = body + ric.calc_check_digit(body + '0')
        if want_x is True and num[-1] != 'X':
            continue
        if want_x is False and num[-1] == 'X':
            continue
        if ric_valid(num):
            return num
    raise RuntimeError('could not make id')


def id15(rng):
    """GB 11643-1989: region + YYMMDD + 3-digit sequence, no check character."""
    region = rng.choice(STABLE_REGIONS)
    d = rand_date(rng, 1932, 1983)
    return region + d.strftime('%y%m%d') + digits(rng, 3)


def bad_id(rng):
    """A resident ID with a typo in the check character (fails MOD 11-2)."""
    while True:
        good = id18(rng)
        wrong = rng.choice([c for c in '0123456789X' if c != good[-1]])
        bad = good[:-1] + wrong
        if not uscc.is_valid(bad):      # keep the negative unambiguous
            return bad


def rand18(rng):
    while True:
        s = digits(rng, 18, first=rng.choice('123456789'))
        if not ric_valid(s) and not is_card_number(s) and not uscc.is_valid(s):
            return s


def card(rng, common=True):
    row = rng.choice(COMMON_BINS if (common and rng.random() < 0.8) else SIX_BINS)
    b, bank, typ, n = row
    body = b + digits(rng, n - len(b) - 1)
    num = body + luhn.calc_check_digit(body)
    assert is_card_number(num)
    return num, BANK_NAMES.get(bank, bank), typ


def fmt_card(num, style):
    if style == 'space':
        return group4(num, ' ')
    if style == 'hyphen':
        return group4(num, '-')
    return num


def mobile(rng):
    return rng.choice(MOBILE_PREFIXES) + digits(rng, 8)


def fmt_mobile(num, style):
    if style == 'space':
        return f'{num[:3]} {num[3:7]} {num[7:]}'
    if style == 'hyphen':
        return f'{num[:3]}-{num[3:7]}-{num[7:]}'
    if style == '+86':
        return '+86' + num
    if style == '+86 space':
        return f'+86 {num[:3]} {num[3:7]} {num[7:]}'
    if style == '0086':
        return '0086' + num
    if style == '+86-':
        return '+86-' + num
    return num


def passport(rng):
    r = rng.random()
    if r < 0.6:
        return 'E' + digits(rng, 8)
    if r < 0.9:
        return 'E' + rng.choice('ABCDEFGHJK') + digits(rng, 7)
    return 'G' + digits(rng, 8)


def _gb11714_check(code8):
    w = [3, 7, 9, 10, 5, 8, 4, 2]
    val = lambda c: int(c) if c.isdigit() else ord(c) - 55
    c = 11 - sum(val(ch) * wt for ch, wt in zip(code8, w)) % 11
    return {10: 'X', 11: '0'}.get(c, str(c))


def make_uscc(rng):
    while True:
        region = rng.choice(POPULAR_REGIONS[:20])
        kind = rng.choice(['91', '91', '91', '92', '93', '52', '12'])
        if rng.random() < 0.6:
            org = 'MA' + rng.choice('0123456789') + ''.join(
                rng.choice('0123456789ABCDEFGHJKLMNPQRTUWXY') for _ in range(5))
        else:
            org = digits(rng, 8, first=rng.choice('3567'))
        org9 = org + _gb11714_check(org)
        if any(c not in USCC_ALPHA for c in org9):
            continue
        body = kind + region + org9
        num = body + uscc.calc_check_digit(body)
        if uscc.is_valid(num):
            return num


# 对公 / 对私 non-card account numbers per bank style (lengths follow what branches print)
ACCT_STYLES = [
    ('中国工商银行', lambda r: '4000' + digits(r, 15)),          # 19
    ('中国建设银行', lambda r: '4420' + digits(r, 16)),          # 20
    ('中国银行', lambda r: digits(r, 12, first='7')),             # 12
    ('中国农业银行', lambda r: '44' + digits(r, 15)),             # 17
    ('招商银行', lambda r: '7559' + digits(r, 11)),               # 15
    ('上海浦东发展银行', lambda r: '7901' + digits(r, 13)),       # 17
    ('交通银行', lambda r: '4430' + digits(r, 17)),               # 21
    ('深圳农村商业银行', lambda r: '0002' + digits(r, 19)),       # 23
    ('中国邮政储蓄银行', lambda r: '9440' + digits(r, 14)),       # 18
    ('兴业银行', lambda r: '3381' + digits(r, 14)),               # 18
    ('中国民生银行', lambda r: '6' + digits(r, 8)),               # 9
    ('平安银行', lambda r: '1101' + digits(r, 10)),               # 14
]


def account(rng, bank=None):
    styles = [s for s in ACCT_STYLES if s[0] == bank] or ACCT_STYLES
    bank, fn = rng.choice(styles)
    while True:
        num = fn(rng)
        if not is_card_number(num):
            return num, bank


def fmt_acct(num, style):
    if style == 'space':
        return group4(num, ' ')
    if style == 'hyphen':
        return group4(num, '-')
    return num


def person_name(rng):
    s, sp = rng.choice(SURNAMES)
    g, gp = rng.choice(GIVEN)
    return s + g, sp, gp


def email(rng, sp, gp, birth_year=None):
    r = rng.random()
    dom = rng.choice(EMAIL_DOMAINS)
    if r < 0.2:
        return digits(rng, rng.randint(8, 10), first=rng.choice('123456789')) + '@qq.com'
    if r < 0.4:
        return f'{sp}.{gp}{rng.randint(1, 99)}@{dom}'
    if r < 0.6:
        return f'{gp}_{sp}@{dom}'
    if r < 0.8:
        return f'{sp}{gp}{birth_year or rng.randint(1970, 2003)}@{dom}'
    return f'{sp}{gp[0]}{rng.randint(100, 999)}@{dom}'


def branch_name(rng, bank=None):
    bank = bank or rng.choice(MAIN_BANKS)
    city = rng.choice(list(CITIES))
    if rng.random() < 0.15:
        return f'{bank}{city}分行营业部'
    return f'{bank}{city}{rng.choice(CITIES[city])}支行'


def company_name(rng):
    city = rng.choice(list(CITIES))
    return f'{city}市{rng.choice(BRAND)}{rng.choice(INDUSTRY)}有限公司'


def address(rng):
    city = rng.choice(list(CITIES))
    return (f'{city}市{rng.choice(CITIES[city])}区{rng.choice(ROADS)}{rng.randint(1, 300)}号'
            f'{rng.randint(1, 30)}栋{rng.randint(1, 33)}0{rng.randint(1, 8)}室')


# ---------------------------------------------------------------- negatives
def serial(rng, day=None):
    day = day or rand_date(rng, 2024, 2025)
    r = rng.random()
    ds = day.strftime('%Y%m%d')
    if r < 0.35:
        return ds + digits(rng, 8, first='4') + digits(rng, 6)          # 22 digits
    if r < 0.55:
        return ds + digits(rng, 6) + digits(rng, 6)                     # 20 digits
    if r < 0.7:
        return 'F' + ds + digits(rng, 10)
    if r < 0.85:
        return digits(rng, 19, first='9')
    return digits(rng, 16, first=rng.choice('123'))


def luhn_bin_number(rng):
    """A number that starts with a real BIN, has the BIN's length and passes Luhn."""
    num, _, _ = card(rng)
    return num


def voucher(rng):
    r = rng.random()
    if r < 0.4:
        return digits(rng, 8, first=rng.choice('0123'))
    if r < 0.7:
        return digits(rng, 12, first='0')
    return 'PZ' + digits(rng, 10)


def order_id(rng):
    r = rng.random()
    if r < 0.3:
        return 'DD' + digits(rng, 16)
    if r < 0.6:
        return rand18(rng)
    if r < 0.8:
        return digits(rng, 19, first='2')
    return 'ORD' + rand_date(rng, 2024, 2025).strftime('%Y%m%d') + digits(rng, 6)


def tracking(rng):
    r = rng.random()
    if r < 0.35:
        return 'SF' + digits(rng, 13)
    if r < 0.6:
        return 'YT' + digits(rng, 13)
    if r < 0.8:
        return digits(rng, 12, first='7')
    return 'JD00' + digits(rng, 11)


def amount(rng, big=False):
    v = rng.choice([rng.uniform(1, 5000), rng.uniform(100, 50000), rng.uniform(1000, 2000000)]) \
        if big else rng.uniform(10, 80000)
    return f'{v:,.2f}'


def timestamp(rng, day=None):
    day = day or rand_date(rng, 2024, 2025)
    return f'{day.isoformat()} {rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}'


def teller(rng):
    r = rng.random()
    if r < 0.5:
        return 'T' + digits(rng, 4)
    return digits(rng, 6, first='0')


def branch_code(rng):
    return rng.choice(['4401', '4403', '1100', '3100', '3301']) + digits(rng, 4)


def landline(rng):
    area = rng.choice(['0755', '020', '010', '021', '0571', '028', '027', '025'])
    n = digits(rng, 8, first=rng.choice('2345678'))
    r = rng.random()
    if r < 0.5:
        return f'{area}-{n}'
    if r < 0.7:
        return f'({area}){n}'
    if r < 0.85:
        return f'{area}-{n[:4]} {n[4:]}'
    return f'{area}-{n}-{rng.randint(800, 8999)}'


def invoice_no(rng):
    if rng.random() < 0.6:
        return rng.choice(['24', '25']) + '44' + '2000000' + digits(rng, 9)   # 20-digit 全电发票
    return digits(rng, 8, first='0')


def batch_id(rng):
    return 'PL' + rand_date(rng, 2024, 2025).strftime('%Y%m%d') + digits(rng, 3)
