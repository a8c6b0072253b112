//! Teller Guard's compiled scanning core: the per-candidate path of `guard.scan.engine`.
//!
//! One pass over the text finds the candidates (the engine's `CANDIDATE` pattern, hand-written),
//! folds, filters and groups them, validates them (GB 11643 check character and birth date, Luhn
//! and the BIN table, the mobile number plan, the USCC check character, the e-mail shape), keys
//! their hashes (HMAC-SHA256), masks them and builds the `Finding` objects. The decisions are a
//! line-for-line port of the Python engine, which stays the reference: the differential test
//! (tests/guard/scan/test_core_differential.py) compares the two finding for finding.
//!
//! The document structure runs here too (layout.rs: the current line, its table cells, the column
//! header over a cell or an aligned column, the record's bank / name / payment hints; labels.rs:
//! the context words; keys.rs: the key written before a `key: value` candidate), on the state of
//! the `structure.Layout` the engine passes in, read when a scan starts and written back when it
//! ends. What stays in Python, asked once per line, key or prefix and not per candidate:
//! classifying a header-like line (`structure._header_of`), classifying a key
//! (`structure._key_kind`), and the few answers only a library knows (the mobile number plan of
//! phonenumbers, the county table of python-stdnum), remembered here. The tables (provinces,
//! BINs, glued labels, card groupings, context words) are passed in at construction from the same
//! sources the Python engine reads, so there is one copy of each.
//!
//! Findings are built as the frozen dataclass builds them, straight into `Finding`'s slots, left
//! untracked by the cycle collector (they hold no container), with the collector paused while
//! the scan runs; `scan` says whether it appended them in order, so the engine sorts only then.

mod keys;
mod labels;
mod layout;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use regex::Regex;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A multiply-rotate hasher for the small integer keys of the BIN table and the county cache
/// (SipHash's flooding resistance buys nothing for keys that are digit prefixes).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

type FxMap<Key, V> = HashMap<Key, V, std::hash::BuildHasherDefault<Fx>>;

// -- label kinds and finding types ---------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum K {
    Id,
    Card,
    Account,
    Mobile,
    Passport,
    Uscc,
    Email,
    Neg,
    /// `structure.NAME`: a column of people's or companies' names.
    Name,
    /// `structure.BANK`: a column of bank or branch names.
    Bank,
    Other,
}

type Label = Option<K>;

fn kind_of(s: &str) -> K {
    match s {
        "ID" => K::Id,
        "CARD" => K::Card,
        "ACCOUNT" => K::Account,
        "MOBILE" => K::Mobile,
        "PASSPORT" => K::Passport,
        "USCC" => K::Uscc,
        "EMAIL" => K::Email,
        "NEG" => K::Neg,
        "NAME" => K::Name,
        "BANK" => K::Bank,
        _ => K::Other,
    }
}

const RESIDENT_ID: usize = 0;
const BANK_CARD: usize = 1;
const MOBILE: usize = 2;
const EMAIL: usize = 3;
const USCC: usize = 4;
const PASSPORT: usize = 5;
const ACCOUNT: usize = 6;
const TYPE_NAMES: [&str; 7] = [
    "CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE", "EMAIL", "CN_USCC", "CN_PASSPORT", "CN_BANK_ACCOUNT",
];
const NONE: usize = usize::MAX;

const MAX_DIGITS: usize = 25;

// -- character classes (the engine's sets, over code points) -------------------------------------

#[inline]
fn is_d(c: u32) -> bool {
    (0x30..=0x39).contains(&c) || (0xFF10..=0xFF19).contains(&c)
}
#[inline]
fn is_ascii_digit(c: u32) -> bool {
    (0x30..=0x39).contains(&c)
}
#[inline]
fn is_sep(c: u32) -> bool {
    matches!(c, 0x20 | 0x2D | 0xA0 | 0x2000..=0x200B | 0x202F | 0x205F | 0x3000 | 0xFF0D
        | 0x2010..=0x2014 | 0x2212)
}
#[inline]
fn is_xch(c: u32) -> bool {
    matches!(c, 0x58 | 0x78 | 0xFF38 | 0xFF58)
}
#[inline]
fn is_at(c: u32) -> bool {
    c == 0x40 || c == 0xFF20
}
#[inline]
fn is_ascii_letter(c: u32) -> bool {
    (0x41..=0x5A).contains(&c) || (0x61..=0x7A).contains(&c)
}
#[inline]
fn is_letter(c: u32) -> bool {
    is_ascii_letter(c) || (0xFF21..=0xFF3A).contains(&c) || (0xFF41..=0xFF5A).contains(&c)
}
#[inline]
fn is_alnum(c: u32) -> bool {
    is_d(c) || is_letter(c)
}
#[inline]
fn is_word(c: u32) -> bool {
    is_ascii_digit(c) || is_ascii_letter(c)
}
#[inline]
fn prev_special(c: u32) -> bool {
    is_letter(c) || is_d(c) || is_at(c) || matches!(c, 0x5F | 0x2E | 0x2B | 0xFF0B | 0x2D)
}
#[inline]
fn next_special(c: u32) -> bool {
    is_letter(c) || is_at(c) || c == 0x5F
}
#[inline]
fn is_plus(c: u32) -> bool {
    c == 0x2B || c == 0xFF0B
}
#[inline]
fn is_dash(c: u32) -> bool {
    matches!(c, 0x2D | 0xFF0D | 0x2010..=0x2014 | 0x2212)
}
#[inline]
fn prefix_last(c: u32) -> bool {
    is_sep(c) || matches!(c, 0x29 | 0xFF09 | 0x36 | 0xFF16)
}
/// `structure._KEY_END`: a character a key-value separator or its quoting can end with.
#[inline]
fn key_end(c: u32) -> bool {
    matches!(c, 0x22 | 0x27 | 0x3A | 0x3D | 0xFF1A | 0x3E | 0x20 | 0x09 | 0x60 | 0x5B)
}
/// Python's `str.isspace` (for `\s` in the amount pattern).
#[inline]
fn py_space(c: u32) -> bool {
    matches!(c, 0x09..=0x0D | 0x1C..=0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028
        | 0x2029 | 0x202F | 0x205F | 0x3000)
}

/// `normalize.FOLD_TABLE` for one code point.
#[inline]
fn fold(c: u32) -> u32 {
    match c {
        0xFF10..=0xFF19 => c - 0xFF10 + 0x30,
        0xFF21..=0xFF3A => c - 0xFF21 + 0x41,
        0xFF41..=0xFF5A => c - 0xFF41 + 0x61,
        0xFF0B => 0x2B,
        0xFF0D => 0x2D,
        0xFF20 => 0x40,
        0xFF0E => 0x2E,
        0xFF3F => 0x5F,
        0x2010..=0x2014 | 0x2212 => 0x2D,
        0xA0 | 0x3000 | 0x202F | 0x205F | 0x200B | 0x2000..=0x200A => 0x20,
        _ => c,
    }
}

// -- the text, whatever its storage --------------------------------------------------------------

trait Unit: Copy {
    fn cp(self) -> u32;
}
impl Unit for u8 {
    #[inline]
    fn cp(self) -> u32 {
        self as u32
    }
}
impl Unit for u16 {
    #[inline]
    fn cp(self) -> u32 {
        self as u32
    }
}
impl Unit for u32 {
    #[inline]
    fn cp(self) -> u32 {
        self
    }
}

// -- validators (ports of the detector modules) --------------------------------------------------

fn all_same(v: &[u8]) -> bool {
    v.iter().all(|&b| b == v[0])
}

fn num(v: &[u8]) -> u64 {
    v.iter().fold(0u64, |a, &b| a * 10 + (b - b'0') as u64)
}

fn real_date(y: u32, m: u32, d: u32) -> bool {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match m {
        2 => if leap { 29 } else { 28 },
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= dim
}

/// `bank_account.dated`: starts with a date (19/20yy, month 01-12, day 01-31), as strings.
fn dated(v: &[u8]) -> bool {
    if v.len() < 8 {
        return false; // the Python slices are then too short to compare as dates
    }
    let (m, d) = (&v[4..6], &v[6..8]);
    (v[..2] == *b"19" || v[..2] == *b"20") && m >= &b"01"[..] && m <= &b"12"[..]
        && d >= &b"01"[..] && d <= &b"31"[..]
}

fn luhn_valid(v: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in v.iter().rev().enumerate() {
        let d = (b - b'0') as u32;
        sum += if i % 2 == 1 { [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][d as usize] } else { d };
    }
    sum % 10 == 0
}

/// `bank_card._iin` from the first four digits and the length.
fn international_iin(v: &[u8]) -> bool {
    let n = v.len();
    let d1 = v[0];
    if d1 == b'4' {
        return n == 13 || n == 16 || n == 19;
    }
    if !b"23568".contains(&d1) {
        return false;
    }
    let d2 = num(&v[..2]);
    let d3 = num(&v[..3]);
    let d4 = num(&v[..4]);
    if (51..=55).contains(&d2) || (2221..=2720).contains(&d4) {
        return n == 16;
    }
    if d2 == 34 || d2 == 37 {
        return n == 15;
    }
    if d2 == 62 || d2 == 81 {
        return (16..=19).contains(&n);
    }
    if (3528..=3589).contains(&d4) {
        return (16..=19).contains(&n);
    }
    if d2 == 36 || (300..=305).contains(&d3) {
        return (14..=19).contains(&n);
    }
    if d4 == 6011 || d2 == 65 || (644..=649).contains(&d3) {
        return (16..=19).contains(&n);
    }
    false
}

fn date_like(v: &[u8]) -> bool {
    let y = num(&v[..4]) as u32;
    (1990..=2099).contains(&y) && real_date(y, num(&v[4..6]) as u32, num(&v[6..8]) as u32)
}

/// ISO 7064 MOD 11-2 as python-stdnum computes it: (1 - 2 * int(first 17, 13)) % 11.
fn ric_check(v: &[u8]) -> u8 {
    let mut acc: i64 = 0;
    for &b in &v[..17] {
        acc = (acc * 13 + (b - b'0') as i64) % 11;
    }
    let c = (1 - 2 * acc).rem_euclid(11);
    if c == 10 { b'X' } else { b'0' + c as u8 }
}

const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// `stdnum.cn.uscc.is_valid` of an upper-case value without separators.
fn uscc_valid(v: &[u8]) -> bool {
    if v.len() != 18 || !v[..8].iter().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut idx = [0u32; 18];
    for (i, b) in v.iter().enumerate().skip(8) {
        match USCC_ALPHABET.iter().position(|a| a == b) {
            Some(p) => idx[i] = p as u32,
            None => return false,
        }
    }
    for i in 0..8 {
        idx[i] = (v[i] - b'0') as u32;
    }
    let total: u32 = (0..17).map(|i| idx[i] * USCC_WEIGHTS[i]).sum();
    v[17] == USCC_ALPHABET[((31 - total % 31) % 31) as usize]
}

/// `passport._FORMAT.fullmatch` of an upper-case value.
fn passport_format(v: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().all(|b| b.is_ascii_digit());
    match v.len() {
        9 => {
            ((v[0] == b'E' || v[0] == b'G') && digits(&v[1..]))
                || (v[0] == b'E' && v[1].is_ascii_uppercase() && v[1] != b'I' && v[1] != b'O'
                    && digits(&v[2..]))
                || (v[0] == b'1' && (v[1] == b'4' || v[1] == b'5') && digits(&v[2..]))
        }
        8 => (v[0] == b'D' || v[0] == b'P' || v[0] == b'S') && digits(&v[1..]),
        _ => false,
    }
}

// -- the core ------------------------------------------------------------------------------------

/// Caller-side state of one scan: the header classifier and the output.
struct Calls<'py> {
    header_of: Bound<'py, PyAny>,
    out: Bound<'py, PyList>,
    base: usize,
    today: u32,
    /// `scan_json`: the findings are written as JSON text here instead of appended to `out`.
    json: Option<RefCell<JsonOut>>,
}

/// The findings of one `scan_json` call as the CLI's JSON Lines write them
/// (`guard.commands.scan.finding_json`), byte for byte.
struct JsonOut {
    /// Per type: `{"type": <type>, "start": ` and `, "category": <category>, "hash": `, encoded
    /// by Python's own JSON string encoder.
    heads: Vec<String>,
    mids: Vec<String>,
    /// `repr(round(score, 4))` per distinct score, from Python's float repr.
    confidences: Vec<(u64, String)>,
    /// The objects, one after the other, and each one's (start, end, offset, length) in `text`.
    text: Vec<u8>,
    spans: Vec<(usize, usize, usize, usize)>,
}

impl JsonOut {
    /// The objects joined by ", " in (start, end) order (a stable sort, as the engine's
    /// `list.sort` of the same findings), and how many there are.
    fn joined(&self, ordered: bool) -> Vec<u8> {
        let mut order: Vec<usize> = (0..self.spans.len()).collect();
        if !ordered {
            order.sort_by_key(|&i| (self.spans[i].0, self.spans[i].1));
        }
        let mut out = Vec::with_capacity(self.text.len() + 2 * self.spans.len());
        for (n, &i) in order.iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(b", ");
            }
            let (_, _, off, len) = self.spans[i];
            out.extend_from_slice(&self.text[off..off + len]);
        }
        out
    }
}

/// `json.encoder.encode_basestring` (the ensure_ascii=False encoder) of `s`, appended to `out`.
fn json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[pyclass(frozen, module = "guard_core")]
struct Core {
    mac: HmacSha256,
    threshold: [f64; 7],
    type_names: Vec<Py<PyString>>,
    categories: Vec<Py<PyAny>>,
    finding_cls: Py<PyAny>,
    attr_names: Vec<Py<PyString>>,
    /// Where `Finding`'s slots are in its objects (the member descriptors' offsets), when every
    /// field is a plain writable object slot; None: set them through `object.__setattr__`.
    slot_offsets: Option<Vec<isize>>,
    provinces: [bool; 100],
    authority: [bool; 128],
    org_type: [bool; 128],
    bins: FxMap<(u8, u64), u32>,
    bin_heads: Vec<Vec<u8>>,
    glued: HashMap<Vec<u8>, Label>,
    groupings: HashSet<Vec<u8>>,
    mobile_verdict: Py<PyAny>,
    mobile_ask: Py<PyAny>,
    place_known: Py<PyAny>,
    verdicts: Vec<AtomicU8>,
    places: Mutex<FxMap<u64, bool>>,
    domain: Regex,
    header_of: Py<PyAny>,
    /// `structure._key_kind`: the label kind of a key before its value (asked once per key).
    key_kind: Py<PyAny>,
    key_kinds: Mutex<FxMap<String, Label>>,
    /// Python's own answers for `str.isalnum` / `str.isdigit` of BMP characters, asked once each
    /// (bit 1: known, 2: alnum, 4: digit), so `\b` and `isalnum` here are Python's exactly.
    pychars: Vec<AtomicU8>,
    bank_words: Vec<Vec<u32>>,
    payment_words: Vec<Vec<u32>>,
    labels: labels::Trie,
}

const V_UNKNOWN: u8 = 0;
const V_TRUE: u8 = 1;
const V_FALSE: u8 = 2;
const V_MIXED: u8 = 3;

fn label_of(obj: &Bound<'_, PyAny>) -> PyResult<Label> {
    if obj.is_none() {
        return Ok(None);
    }
    let s = obj.downcast::<PyString>()?;
    let s = s.to_str()?;
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(kind_of(s)))
}

/// The offsets of `names` in objects of `cls`, if each is a writable object slot of its own.
fn slot_offsets(cls: &Bound<'_, PyAny>, names: &[Py<PyString>]) -> Option<Vec<isize>> {
    let py = cls.py();
    let mut out = Vec::new();
    for name in names {
        let descr = cls.getattr(name.bind(py)).ok()?;
        // SAFETY: the type test makes the cast to a member descriptor valid; pyo3 types its
        // d_member as a PyGetSetDef, the member descriptor's is a PyMemberDef
        unsafe {
            if ffi::Py_TYPE(descr.as_ptr()) != std::ptr::addr_of_mut!(ffi::PyMemberDescr_Type) {
                return None;
            }
            let md = descr.as_ptr() as *mut ffi::PyMemberDescrObject;
            let member = (*md).d_member as *const ffi::PyMemberDef;
            if member.is_null() || (*member).type_code != ffi::Py_T_OBJECT_EX
                || (*member).flags & ffi::Py_READONLY != 0
            {
                return None;
            }
            out.push((*member).offset);
        }
    }
    Some(out)
}

fn round4(x: f64) -> f64 {
    // the same correctly rounded decimal as Python's round(x, 4), read back as the nearest double
    format!("{:.4}", x).parse().unwrap_or(x)
}

fn parse_today(today: &str) -> PyResult<u32> {
    today.parse().map_err(|_| PyValueError::new_err("today must be YYYYMMDD"))
}

#[pymethods]
impl Core {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (key, thresholds, finding_cls, categories, provinces, authority, org_type,
                        bins, glued, groupings, mobile_verdict, mobile_ask, place_known,
                        label_words, label_kinds, header_of, key_kind))]
    fn new(
        py: Python<'_>,
        key: &[u8],
        thresholds: &Bound<'_, PyDict>,
        finding_cls: Py<PyAny>,
        categories: &Bound<'_, PyDict>,
        provinces: Vec<String>,
        authority: String,
        org_type: String,
        bins: &Bound<'_, PyDict>,
        glued: &Bound<'_, PyDict>,
        groupings: Vec<Vec<usize>>,
        mobile_verdict: Py<PyAny>,
        mobile_ask: Py<PyAny>,
        place_known: Py<PyAny>,
        label_words: Vec<String>,
        label_kinds: HashMap<String, String>,
        header_of: Py<PyAny>,
        key_kind: Py<PyAny>,
    ) -> PyResult<Self> {
        let mac = HmacSha256::new_from_slice(key)
            .map_err(|e| PyValueError::new_err(format!("bad hash key: {e}")))?;
        let mut threshold = [2.0f64; 7];
        let mut type_names = Vec::new();
        let mut cats = Vec::new();
        for (i, name) in TYPE_NAMES.iter().enumerate() {
            let t = thresholds.get_item(name)?.ok_or_else(|| {
                PyValueError::new_err(format!("no confidence threshold for {name}"))
            })?;
            threshold[i] = t.extract()?;
            let c = categories.get_item(name)?
                .ok_or_else(|| PyValueError::new_err(format!("no category for {name}")))?;
            cats.push(c.unbind());
            type_names.push(PyString::intern(py, name).unbind());
        }
        let mut prov = [false; 100];
        for p in &provinces {
            let b = p.as_bytes();
            if b.len() != 2 || !b.iter().all(|c| c.is_ascii_digit()) {
                return Err(PyValueError::new_err(format!("bad province code {p:?}")));
            }
            prov[num(b) as usize] = true;
        }
        let mut auth = [false; 128];
        for c in authority.bytes() {
            auth[(c & 0x7F) as usize] = true;
        }
        let mut org = [false; 128];
        for c in org_type.bytes() {
            org[(c & 0x7F) as usize] = true;
        }
        let mut table: FxMap<(u8, u64), u32> = FxMap::default();
        let mut heads: Vec<HashSet<u8>> = vec![HashSet::new(); 1000];
        for (k, v) in bins.iter() {
            let prefix: String = k.extract()?;
            let b = prefix.as_bytes();
            if b.len() < 3 || b.len() > 18 || !b.iter().all(|c| c.is_ascii_digit()) {
                return Err(PyValueError::new_err(format!("bad BIN prefix {prefix:?}")));
            }
            let lengths: HashSet<u32> = v.extract()?;
            let mut mask = 0u32;
            for l in lengths {
                if l < 32 {
                    mask |= 1 << l;
                }
            }
            table.insert((b.len() as u8, num(b)), mask);
            heads[num(&b[..3]) as usize].insert(b.len() as u8);
        }
        let bin_heads = heads
            .into_iter()
            .map(|s| {
                let mut v: Vec<u8> = s.into_iter().collect();
                v.sort_unstable_by(|a, b| b.cmp(a));
                v
            })
            .collect();
        let mut glued_map = HashMap::new();
        for (k, v) in glued.iter() {
            let word: String = k.extract()?;
            let kind: String = v.extract()?;
            glued_map.insert(word.into_bytes(), if kind.is_empty() { None } else { Some(kind_of(&kind)) });
        }
        let groupings = groupings
            .into_iter()
            .map(|g| g.into_iter().map(|x| x.min(255) as u8).collect())
            .collect();
        let domain = Regex::new(
            r"^((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24})(?:[^A-Za-z0-9\-]|$)",
        )
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let attr_names: Vec<Py<PyString>> = ["type", "start", "end", "score", "masked", "hash", "category", "box"]
            .iter()
            .map(|n| PyString::intern(py, n).unbind())
            .collect();
        Ok(Core {
            mac,
            threshold,
            type_names,
            categories: cats,
            slot_offsets: slot_offsets(finding_cls.bind(py), &attr_names),
            finding_cls,
            attr_names,
            provinces: prov,
            authority: auth,
            org_type: org,
            bins: table,
            bin_heads,
            glued: glued_map,
            groupings,
            mobile_verdict,
            mobile_ask,
            place_known,
            verdicts: (0..10000).map(|_| AtomicU8::new(V_UNKNOWN)).collect(),
            places: Mutex::new(FxMap::default()),
            domain,
            header_of,
            key_kind,
            key_kinds: Mutex::new(FxMap::default()),
            pychars: (0..0x10000).map(|_| AtomicU8::new(0)).collect(),
            bank_words: ["银行", "支行", "分行", "信用社", "农商行", "农信社", "储蓄所"]
                .iter().map(|w| w.chars().map(|c| c as u32).collect()).collect(),
            payment_words: ["付款", "收款", "转账", "转入", "转出", "汇款", "汇入", "代发", "扣款",
                            "还款", "缴费", "支付", "消费", "Payee", "payee", "Payer", "payer",
                            "Transfer", "transfer", "Payment", "payment"]
                .iter().map(|w| w.chars().map(|c| c as u32).collect()).collect(),
            labels: labels::Trie::new(
                &label_words,
                &label_kinds.into_iter().map(|(k, v)| (k, kind_of(&v))).collect(),
            ),
        })
    }

    /// Append the findings of the candidates starting in text[lo:hi] (offsets + base) to `out`.
    /// True when `out` was empty and the findings came in (start, end) order (no sort needed).
    #[allow(clippy::too_many_arguments)]
    fn scan<'py>(
        &self,
        text: &Bound<'py, PyString>,
        lo: usize,
        hi: usize,
        base: usize,
        out: &Bound<'py, PyList>,
        layout: &Bound<'py, PyAny>,
        today: &str,
    ) -> PyResult<bool> {
        let calls = Calls {
            header_of: self.header_of.bind(text.py()).clone(),
            out: out.clone(),
            base,
            today: parse_today(today)?,
            json: None,
        };
        let empty = out.is_empty();
        // The scan allocates findings only, which are in no reference cycle (and untracked): the
        // cycle collector would walk the heap every few hundred of them for nothing, so it
        // waits until the scan returns (the GIL is held throughout; its state is restored).
        // SAFETY: plain calls of the C API with the GIL held.
        let gc_was_on = unsafe { ffi::PyGC_Disable() } != 0;
        let done = self.scan_with(text, lo, hi, layout, &calls, empty);
        if gc_was_on {
            unsafe { ffi::PyGC_Enable() };
        }
        done
    }

    /// `scan`'s findings of text[lo:hi] as the CLI's JSON Lines write them
    /// (`guard.commands.scan.finding_json`, joined by ", ", in (start, end) order), without
    /// building a `Finding`: (how many, the text). `heads[i]` is `{"type": <type>, "start": `
    /// and `mids[i]` `, "category": <category>, "hash": ` of the i-th type of `types`, encoded
    /// by the caller with Python's JSON string encoder.
    #[allow(clippy::too_many_arguments)]
    fn scan_json<'py>(
        &self,
        text: &Bound<'py, PyString>,
        lo: usize,
        hi: usize,
        base: usize,
        layout: &Bound<'py, PyAny>,
        today: &str,
        heads: Vec<String>,
        mids: Vec<String>,
    ) -> PyResult<(usize, Bound<'py, PyString>)> {
        let py = text.py();
        if heads.len() != self.type_names.len() || mids.len() != self.type_names.len() {
            return Err(PyValueError::new_err(format!(
                "scan_json: need {} heads and mids, one per type", self.type_names.len())));
        }
        let calls = Calls {
            header_of: self.header_of.bind(py).clone(),
            out: PyList::empty(py),
            base,
            today: parse_today(today)?,
            json: Some(RefCell::new(JsonOut {
                heads,
                mids,
                confidences: Vec::new(),
                text: Vec::new(),
                spans: Vec::new(),
            })),
        };
        let ordered = self.scan_with(text, lo, hi, layout, &calls, true)?;
        let json = calls.json.as_ref().map(|j| j.borrow()).expect("json mode");
        let joined = json.joined(ordered);
        // SAFETY: `joined` is UTF-8: Python's encoded heads, ASCII numbers and hex, and masked
        // values that are ASCII or `from_utf8_lossy`'s output, escaped byte for byte
        let joined = unsafe { String::from_utf8_unchecked(joined) };
        Ok((json.spans.len(), PyString::new(py, &joined)))
    }

    /// The finding types in the order `scan_json`'s heads and mids follow.
    #[getter]
    fn types(&self) -> Vec<&'static str> {
        TYPE_NAMES.to_vec()
    }

    /// The span of the key group of `structure._KEY_BEFORE.search(text, max(ls, end - 100),
    /// end)`, or None: the key pattern alone, for the differential test (`scan` uses it inside).
    fn key_span<'py>(
        &self,
        text: &Bound<'py, PyString>,
        ls: usize,
        end: usize,
        layout: &Bound<'py, PyAny>,
    ) -> PyResult<Option<(usize, usize)>> {
        let py = text.py();
        let calls = Calls {
            header_of: self.header_of.bind(py).clone(),
            out: PyList::empty(py),
            base: 0,
            today: 0,
            json: None,
        };
        // SAFETY: as in `scan`: the str is immutable and `text` keeps it alive for this call.
        let data = unsafe { text.data()? };
        let lay = RefCell::new(layout::Lay::read(layout)?);
        let n = match data {
            pyo3::types::PyStringData::Ucs1(s) => s.len(),
            pyo3::types::PyStringData::Ucs2(s) => s.len(),
            pyo3::types::PyStringData::Ucs4(s) => s.len(),
        };
        if ls > end || end > n {
            return Err(PyValueError::new_err(format!(
                "key_span: need ls <= end <= len(text), got {ls}, {end}, {n}")));
        }
        match data {
            pyo3::types::PyStringData::Ucs1(s) => Scan::new(self, s, &calls, &lay, true).key_pattern(ls, end),
            pyo3::types::PyStringData::Ucs2(s) => Scan::new(self, s, &calls, &lay, true).key_pattern(ls, end),
            pyo3::types::PyStringData::Ucs4(s) => Scan::new(self, s, &calls, &lay, true).key_pattern(ls, end),
        }
    }
}

impl Core {
    /// One scan of text[lo:hi] on the layout's state (read first, written back after).
    fn scan_with<'py>(
        &self,
        text: &Bound<'py, PyString>,
        lo: usize,
        hi: usize,
        layout: &Bound<'py, PyAny>,
        calls: &Calls<'py>,
        empty: bool,
    ) -> PyResult<bool> {
        // SAFETY: the string is immutable and kept alive by `text` for the whole call; its data
        // is read only while this borrow lasts (no Python code can change a str).
        let data = unsafe { text.data()? };
        let lay = RefCell::new(layout::Lay::read(layout)?);
        let done = match data {
            pyo3::types::PyStringData::Ucs1(s) => Scan::new(self, s, calls, &lay, empty).go(lo, hi),
            pyo3::types::PyStringData::Ucs2(s) => Scan::new(self, s, calls, &lay, empty).go(lo, hi),
            pyo3::types::PyStringData::Ucs4(s) => Scan::new(self, s, calls, &lay, empty).go(lo, hi),
        };
        lay.borrow().write(layout)?;
        done
    }

    /// Python's `str.isalnum` / `str.isdigit` of one character: bit 2 / bit 4 of the answer.
    fn py_char(&self, py: Python<'_>, c: u32) -> PyResult<u8> {
        let ask = |c: u32| -> PyResult<u8> {
            let ch = PyString::new(py, &char::from_u32(c).map_or(String::new(), |ch| ch.to_string()));
            if ch.len()? != 1 {
                return Ok(1); // a lone surrogate: neither (as Python says of it)
            }
            let alnum = ch.call_method0("isalnum")?.is_truthy()?;
            let digit = ch.call_method0("isdigit")?.is_truthy()?;
            Ok(1 | if alnum { 2 } else { 0 } | if digit { 4 } else { 0 })
        };
        if c >= 0x10000 {
            return ask(c);
        }
        let slot = &self.pychars[c as usize];
        let v = slot.load(Ordering::Relaxed);
        if v != 0 {
            return Ok(v);
        }
        let v = ask(c)?;
        slot.store(v, Ordering::Relaxed);
        Ok(v)
    }

    fn py_alnum(&self, py: Python<'_>, c: u32) -> PyResult<bool> {
        if c < 0x80 {
            return Ok(is_word(c));
        }
        Ok(self.py_char(py, c)? & 2 != 0)
    }

    fn py_digit(&self, py: Python<'_>, c: u32) -> PyResult<bool> {
        if c < 0x80 {
            return Ok(is_ascii_digit(c));
        }
        Ok(self.py_char(py, c)? & 4 != 0)
    }

    /// Whether one of `words` stands wholly inside text[lo:hi].
    fn words_in<U: Unit>(&self, t: &[U], lo: usize, hi: usize, words: &[Vec<u32>]) -> bool {
        for i in lo..hi {
            let c = t[i].cp();
            for w in words {
                if w[0] == c && i + w.len() <= hi && w.iter().enumerate().all(|(k, &x)| t[i + k].cp() == x) {
                    return true;
                }
            }
        }
        false
    }

    fn province(&self, v: &[u8]) -> bool {
        v.len() >= 2 && v[0].is_ascii_digit() && v[1].is_ascii_digit()
            && self.provinces[num(&v[..2]) as usize]
    }

    fn birth_ok(&self, v: &[u8], today: u32) -> bool {
        // v: 8 ASCII digits
        let ymd = num(v) as u32;
        real_date(num(&v[..4]) as u32, num(&v[4..6]) as u32, num(&v[6..8]) as u32)
            && (18900101..=today).contains(&ymd)
    }

    fn id_layout(&self, v: &[u8], today: u32) -> bool {
        self.province(v) && self.birth_ok(&v[6..14], today)
    }

    fn chinese_bin(&self, v: &[u8]) -> Option<(usize, bool)> {
        let lens = &self.bin_heads[num(&v[..3]) as usize];
        for &n in lens {
            let take = (n as usize).min(v.len());
            if let Some(mask) = self.bins.get(&(take as u8, num(&v[..take]))) {
                let ok = v.len() < 32 && mask & (1 << v.len()) != 0;
                return Some((n as usize, ok));
            }
        }
        None
    }

    fn is_mobile(&self, py: Python<'_>, v: &[u8]) -> PyResult<bool> {
        if v.len() != 11 || v[0] != b'1' || b"012".contains(&v[1]) {
            return Ok(false);
        }
        let p = num(&v[..4]) as usize;
        let mut verdict = self.verdicts[p].load(Ordering::Relaxed);
        if verdict == V_UNKNOWN {
            let prefix = std::str::from_utf8(&v[..4]).unwrap_or_default();
            let r = self.mobile_verdict.bind(py).call1((prefix,))?;
            verdict = if r.is_none() {
                V_MIXED
            } else if r.is_truthy()? {
                V_TRUE
            } else {
                V_FALSE
            };
            self.verdicts[p].store(verdict, Ordering::Relaxed);
        }
        match verdict {
            V_TRUE => Ok(true),
            V_FALSE => Ok(false),
            _ => {
                let number = std::str::from_utf8(v).unwrap_or_default();
                self.mobile_ask.bind(py).call1((number,))?.is_truthy()
            }
        }
    }

    fn place_known(&self, py: Python<'_>, v: &[u8]) -> PyResult<bool> {
        let key = num(&v[..10]);
        if let Some(&known) = self.places.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(known);
        }
        let arg = std::str::from_utf8(&v[..10]).unwrap_or_default();
        let known = self.place_known.bind(py).call1((arg,))?.is_truthy()?;
        let mut places = self.places.lock().map_err(|_| poisoned())?;
        if places.len() >= 65536 {
            places.clear();
        }
        places.insert(key, known);
        Ok(known)
    }

    fn resident_score(&self, py: Python<'_>, v: &[u8], label: Label, today: u32) -> PyResult<Option<f64>> {
        if !self.province(v) || ric_check(v) != v[17] {
            return Ok(None);
        }
        if !self.birth_ok(&v[6..14], today) {
            return Ok(None);
        }
        let base = if self.place_known(py, v)? { 0.96 } else { 0.88 };
        Ok(Some(match label {
            Some(K::Id) => f64::min(base + 0.03, 0.99),
            Some(K::Neg) => base - 0.5,
            _ => base,
        }))
    }

    fn uscc_score(&self, v: &[u8], label: Label, today: u32) -> Option<f64> {
        if v.len() != 18 || !self.authority[(v[0] & 0x7F) as usize] || label == Some(K::Neg) {
            return None;
        }
        let digits_only = v.iter().all(|b| b.is_ascii_digit());
        if digits_only && (!self.org_type[(v[1] & 0x7F) as usize] || !self.province(&v[2..4])) {
            return None;
        }
        if digits_only && label != Some(K::Uscc) && self.id_layout(v, today) {
            return None;
        }
        if !uscc_valid(v) {
            return None;
        }
        if label == Some(K::Uscc) {
            return Some(0.97);
        }
        Some(if digits_only { 0.6 } else { 0.93 })
    }

    fn uscc_plausible(&self, v: &[u8]) -> bool {
        self.authority[(v[0] & 0x7F) as usize] && self.org_type[(v[1] & 0x7F) as usize]
            && self.province(&v[2..4])
    }

    fn card_score(&self, v: &[u8], label: Label, grouped: bool, row_hint: bool, today: u32) -> Option<f64> {
        let n = v.len();
        if !(13..=19).contains(&n) || label == Some(K::Neg) || all_same(v) {
            return None;
        }
        let labelled = matches!(label, Some(K::Card) | Some(K::Account));
        if n == 18 && !(labelled || grouped) && self.id_layout(v, today) {
            return None;
        }
        let found = self.chinese_bin(v);
        let iin = found.is_none() && international_iin(v);
        if found.is_none() && !iin && label != Some(K::Card) {
            return None;
        }
        let valid = luhn_valid(v);
        if let Some((prefix_len, length_ok)) = found {
            let strong = prefix_len >= 5;
            if valid && length_ok && strong {
                return Some(if labelled || grouped { 0.97 } else { 0.9 });
            }
            if valid && (length_ok || prefix_len >= 6) {
                if labelled {
                    return Some(0.92);
                }
                if grouped || (row_hint && length_ok && n >= 16) {
                    return Some(0.8);
                }
                return Some(if strong { 0.6 } else { 0.45 });
            }
            if !valid && length_ok && prefix_len >= 6 && labelled {
                return Some(0.65);
            }
        }
        if !valid {
            return None;
        }
        if iin {
            if label == Some(K::Card) {
                return Some(0.93);
            }
            if labelled {
                return Some(0.7);
            }
            if grouped {
                return Some(0.8);
            }
            if row_hint && n >= 16 && !date_like(v) {
                return Some(0.75);
            }
            return if date_like(v) { None } else { Some(0.45) };
        }
        if label == Some(K::Card) && n >= 16 {
            return Some(0.7);
        }
        None
    }

    fn mobile_score(&self, py: Python<'_>, v: &[u8], label: Label, formatted: bool) -> PyResult<Option<f64>> {
        if !self.is_mobile(py, v)? {
            if label == Some(K::Mobile) && shaped(v) {
                return Ok(Some(0.85));
            }
            return Ok(None);
        }
        Ok(Some(match label {
            Some(K::Neg) => 0.3,
            Some(K::Mobile) => 0.98,
            _ => if formatted { 0.95 } else { 0.9 },
        }))
    }

    fn plausible(&self, v: &[u8]) -> bool {
        let n = v.len();
        if n == 11 {
            return shaped(v);
        }
        if n == 18 && (self.province(v) || self.uscc_plausible(v)) {
            return true;
        }
        if n == 15 && self.province(v) {
            return true;
        }
        if (n == 13 && v.starts_with(b"86")) || (n == 15 && v.starts_with(b"0086")) {
            return true;
        }
        if (13..=19).contains(&n) {
            return self.chinese_bin(v).is_some() || international_iin(v);
        }
        n == 9
    }
}

fn poisoned() -> PyErr {
    PyValueError::new_err("the core's cache lock was poisoned")
}

fn shaped(v: &[u8]) -> bool {
    v.len() == 11 && v[0] == b'1' && b"3456789".contains(&v[1])
}

fn account_score(v: &[u8], label: Label, bank_in_row: bool) -> Option<f64> {
    if !(8..=25).contains(&v.len()) || all_same(v) {
        return None;
    }
    if label == Some(K::Account) {
        return Some(0.8);
    }
    if bank_in_row && label.is_none() && v.len() >= 10 && !dated(v) {
        return Some(0.6);
    }
    None
}

/// A Python str of ASCII bytes, written straight into a new compact string.
fn ascii_str(py: Python<'_>, bytes: &[u8]) -> PyResult<PyObject> {
    if !bytes.is_ascii() {
        return Ok(PyString::new(py, &String::from_utf8_lossy(bytes)).into_any().unbind());
    }
    // SAFETY: a new 1-byte-kind string of that length, filled before anyone sees it
    unsafe {
        let o = ffi::PyUnicode_New(bytes.len() as ffi::Py_ssize_t, 127);
        if o.is_null() {
            return Err(PyErr::fetch(py));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ffi::PyUnicode_1BYTE_DATA(o), bytes.len());
        Ok(PyObject::from_owned_ptr(py, o))
    }
}

/// `detectors.mask` of an ASCII value, into `out`.
fn mask_into(t: usize, v: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let n = v.len();
    let keep = match t {
        BANK_CARD => Some((6, 4)),
        MOBILE | RESIDENT_ID => Some((3, 4)),
        _ => None,
    };
    let stars = |out: &mut Vec<u8>, k: usize| out.extend(std::iter::repeat_n(b'*', k));
    if let Some((h, k)) = keep {
        if n > h + k {
            out.extend_from_slice(&v[..h]);
            stars(out, n - h - k);
            out.extend_from_slice(&v[n - k..]);
            return;
        }
    }
    if t == EMAIL {
        match v.iter().rposition(|&b| b == b'@') {
            Some(at) if at > 0 => {
                out.push(v[0]);
                out.extend_from_slice(b"***@");
                out.extend_from_slice(&v[at + 1..]);
            }
            _ => stars(out, n),
        }
        return;
    }
    let (h, k) = keep.unwrap_or((0, 4));
    if n <= h + k {
        stars(out, n);
        return;
    }
    out.extend_from_slice(&v[..h]);
    stars(out, n - h - k);
    out.extend_from_slice(&v[n - k..]);
}

// -- one scan ------------------------------------------------------------------------------------

struct Scan<'a, 'py, U: Unit> {
    c: &'a Core,
    t: &'a [U],
    k: &'a Calls<'py>,
    lay: &'a RefCell<layout::Lay>,
    /// The score objects made so far: a scan has a handful of distinct scores.
    scores: RefCell<Vec<(u64, PyObject)>>,
    /// (start, end) of the last finding appended, and whether all so far came in that order.
    order: std::cell::Cell<(usize, usize, bool)>,
    /// The last newline the candidate loop passed (usize::MAX: none yet); every character
    /// between it and the loop's position has been looked at.
    last_nl: std::cell::Cell<usize>,
    mask_buf: RefCell<Vec<u8>>,
}

struct Decision {
    t: usize,
    score: f64,
    value: Vec<u8>,
    start: usize,
}

impl<'a, 'py, U: Unit> Scan<'a, 'py, U> {
    fn new(c: &'a Core, t: &'a [U], k: &'a Calls<'py>, lay: &'a RefCell<layout::Lay>, empty: bool) -> Self {
        Scan { c, t, k, lay, scores: RefCell::new(Vec::new()), order: std::cell::Cell::new((0, 0, empty)), last_nl: std::cell::Cell::new(usize::MAX), mask_buf: RefCell::new(Vec::new()) }
    }

    /// `run`, then whether the findings came in order.
    fn go(&self, lo: usize, hi: usize) -> PyResult<bool> {
        self.run(lo, hi)?;
        Ok(self.order.get().2)
    }

    #[inline]
    fn at(&self, i: usize) -> u32 {
        self.t[i].cp()
    }
    #[inline]
    fn get(&self, i: usize) -> Option<u32> {
        self.t.get(i).map(|u| u.cp())
    }
    fn digits_from(&self, mut q: usize) -> usize {
        let start = q;
        while q < self.t.len() && is_d(self.at(q)) {
            q += 1;
        }
        q - start
    }
    fn py(&self) -> Python<'py> {
        self.k.out.py()
    }

    // -- candidates (`engine.CANDIDATE`) ---------------------------------------------------------

    fn group(&self, q: usize) -> Option<usize> {
        if !self.get(q).is_some_and(is_sep) {
            return None;
        }
        if self.get(q + 1).is_some_and(is_sep) {
            let d = self.digits_from(q + 2);
            return if d >= 3 { Some(q + 2 + d) } else { None };
        }
        let d = self.digits_from(q + 1);
        if d >= 3 { Some(q + 1 + d) } else { None }
    }

    fn groups(&self, mut q: usize) -> usize {
        while let Some(q2) = self.group(q) {
            q = q2;
        }
        q
    }

    fn candidate_at(&self, p: usize) -> Option<usize> {
        let c = self.at(p);
        if is_at(c) {
            return Some(p + 1);
        }
        if !is_d(c) || !self.get(p + 1).is_some_and(is_d) || !self.get(p + 2).is_some_and(is_d) {
            return None;
        }
        let r = self.digits_from(p + 3);
        let mut q = if r >= 4 {
            self.groups(p + 3 + r)
        } else {
            let q2 = self.group(p + 3 + r)?;
            self.groups(q2)
        };
        if self.get(q).is_some_and(is_xch) {
            q += 1;
        }
        Some(q)
    }

    // -- helpers over the text -------------------------------------------------------------------

    fn ascii_digits(&self, s: usize, e: usize) -> bool {
        (s..e).all(|i| is_ascii_digit(self.at(i)))
    }

    fn bytes(&self, s: usize, e: usize) -> Vec<u8> {
        (s..e).map(|i| fold(self.at(i)) as u8).collect()
    }

    /// `context.hinted`: `[账帐折卡]|acc|a/c|card` (any case) in the 24 characters before `start`.
    fn hinted(&self, start: usize) -> bool {
        let lo = start.saturating_sub(24);
        let low = |i: usize| -> u32 {
            let c = self.at(i);
            if (0x41..=0x5A).contains(&c) { c + 32 } else { c }
        };
        for i in lo..start {
            match low(i) {
                0x8D26 | 0x5E10 | 0x6298 | 0x5361 => return true,
                0x61 => {
                    if i + 3 <= start && low(i + 1) == 0x63 && low(i + 2) == 0x63 {
                        return true;
                    }
                    if i + 3 <= start && low(i + 1) == 0x2F && low(i + 2) == 0x63 {
                        return true;
                    }
                }
                0x63 => {
                    if i + 4 <= start && low(i + 1) == 0x61 && low(i + 2) == 0x72 && low(i + 3) == 0x64 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// `context.amount_after`: a currency unit or decimals right after the number.
    fn amount_after(&self, end: usize) -> bool {
        let mut p = end;
        // one space, not a cell or line break (`\s` less `\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029`)
        if self.get(p).is_some_and(|c| {
            py_space(c) && !matches!(c, 0x09..=0x0D | 0x1C..=0x1F | 0x85 | 0x2028 | 0x2029)
        }) {
            p += 1;
        }
        let c = match self.get(p) {
            Some(c) => c,
            None => return false,
        };
        if matches!(c, 0x5143 | 0x4E07 | 0x5343 | 0x767E | 0x5757 | 0x25 | 0x2030) {
            return true;
        }
        if (c == 0x2E || c == 0xFF0E) && self.get(p + 1).is_some_and(is_d) {
            return true;
        }
        let low = |i: usize| -> u32 {
            match self.get(i) {
                Some(c) if (0x41..=0x5A).contains(&c) => c + 32,
                Some(0x17F) => 0x73, // ſ matches s under IGNORECASE
                Some(c) => c,
                None => 0,
            }
        };
        let word = |w: &[u8]| w.iter().enumerate().all(|(i, &b)| low(p + i) == b as u32);
        word(b"rmb") || word(b"cny") || word(b"usd")
    }

    /// `engine._PREFIX_BACK.search(text, lo, end)`: the start of a +86 prefix ending at `end`.
    fn prefix_back(&self, lo: usize, end: usize) -> Option<usize> {
        let ok_from = |p: usize| -> bool {
            let mut q = p;
            let c = self.at(q);
            if is_plus(c) {
                q += 1;
            } else if (c == 0x30 && self.get(q + 1) == Some(0x30))
                || (c == 0xFF10 && self.get(q + 1) == Some(0xFF10))
            {
                // `00` is optional: if the rest fails after it, it fails without it too (a 0 is
                // not an 8)
                q += 2;
            }
            if q >= end || !matches!(self.at(q), 0x38 | 0xFF18) {
                return false;
            }
            q += 1;
            if q >= end || !matches!(self.at(q), 0x36 | 0xFF16) {
                return false;
            }
            q += 1;
            if q < end && matches!(self.at(q), 0x29 | 0xFF09) {
                q += 1;
            }
            if q < end && is_sep(self.at(q)) {
                q += 1;
            }
            q == end
        };
        let mut p = lo;
        while p + 2 <= end {
            let behind_ok = p == 0 || {
                let b = self.at(p - 1);
                !(is_d(b) || is_ascii_letter(b))
            };
            if behind_ok && ok_from(p) {
                return Some(p);
            }
            p += 1;
        }
        None
    }

    // -- the layout's answers (Python) -----------------------------------------------------------

    /// `Layout.label` (see layout.rs).
    fn label(&self, start: usize) -> PyResult<Label> {
        self.layout_label(start)
    }

    /// `Layout._key_before`: the kind of the key written straight before the value. The cheap
    /// test first (a separator among the few quote/space characters before the value); only then
    /// the key pattern (keys.rs) and the key's kind (Python, cached per key).
    fn key_before(&self, ls: usize, start: usize) -> PyResult<Label> {
        if start > 0 && key_end(self.at(start - 1)) {
            let mut p = start - 1;
            while p > ls && start - p < 6 && matches!(self.at(p), 0x22 | 0x27 | 0x20 | 0x09 | 0x60 | 0x5B) {
                p -= 1;
            }
            if matches!(self.at(p), 0x3A | 0x3D | 0xFF1A | 0x3E) {
                if let Some((a, b)) = self.key_pattern(ls, start)? {
                    return self.key_kind(a, b);
                }
            }
        }
        Ok(None)
    }

    /// `context.nearest_label`: the kind of the context word nearest before `text[start]`.
    fn nearest_label(&self, start: usize, window: usize) -> Label {
        let lo = start.saturating_sub(window);
        let is_letter_at = |i: isize| -> bool {
            i >= 0 && (i as usize) < self.t.len() && is_ascii_letter(self.at(i as usize))
        };
        let mut skip = 0;
        let (w_end, kind) = loop {
            let (w_start, w_end, kind) = self.c.labels.search(self.t, lo, start, skip)?;
            if self.at(w_end - 1) < 0x80
                && (is_letter_at(w_start as isize - 1) || is_letter_at(w_end as isize))
            {
                skip = start - w_end + 1; // part of a longer English word: look further back
                continue;
            }
            break (w_end, kind);
        };
        let kind = kind?;
        if kind == K::Neg {
            let tight = |c: u32| matches!(c, 0x20 | 0x09 | 0x3000 | 0x3A | 0xFF1A | 0x3D | 0x23 | 0x2E
                | 0x2D | 0x27 | 0x22 | 0x201C | 0x201D | 0x2018 | 0x2019 | 0xFF08 | 0xFF09 | 0x28
                | 0x29 | 0x5B | 0x5D | 0x3010 | 0x3011 | 0x3C | 0x3E | 0x300A | 0x300B | 0x2C
                | 0xFF0C | 0x3001 | 0x2F | 0x7C | 0x662F | 0x4E3A | 0x7801);
            if start - w_end > 4 || !(w_end..start).all(|i| tight(self.at(i))) {
                return None;
            }
            return Some(K::Neg);
        }
        let mut run = 0;
        for i in w_end..start {
            if is_d(self.at(i)) {
                run += 1;
                if run >= 5 {
                    return None;
                }
            } else {
                run = 0;
            }
        }
        Some(kind)
    }

    fn layout_key(&self, start: usize) -> PyResult<Label> {
        if start == 0 || !key_end(self.at(start - 1)) {
            return Ok(None); // `Layout.key` answers None here without looking further
        }
        // `Layout.key` is `_key_before(text, 0, start)`
        self.key_before(0, start)
    }
    fn column(&self, start: usize) -> PyResult<Label> {
        self.layout_column(start)
    }
    fn bank_near(&self, start: usize) -> PyResult<bool> {
        self.layout_bank_near(start)
    }
    /// `Layout.passport_before`: 护照, Passport, passport or PASSPORT in the 100 characters before.
    fn passport_before(&self, start: usize) -> PyResult<bool> {
        let lo = start.saturating_sub(100);
        let has = |i: usize, w: &[u32]| i + w.len() <= start && w.iter().enumerate().all(|(k, &c)| self.at(i + k) == c);
        let lower: Vec<u32> = "assport".chars().map(|c| c as u32).collect();
        let upper: Vec<u32> = "ASSPORT".chars().map(|c| c as u32).collect();
        for i in lo..start {
            match self.at(i) {
                0x62A4 if has(i + 1, &[0x7167]) => return Ok(true),
                0x50 | 0x70 if has(i + 1, &lower) => return Ok(true),
                0x50 if has(i + 1, &upper) => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }
    fn row(&self, start: usize) -> PyResult<(bool, bool)> {
        let hints = self.layout_row(start)?;
        Ok((hints.name, hints.payment))
    }

    /// `engine._gate`.
    fn gate(&self, start: usize, value: &[u8]) -> PyResult<bool> {
        let gated = |l: Label| matches!(l, Some(K::Account) | Some(K::Card) | Some(K::Id));
        if gated(self.column(start)?) || gated(self.layout_key(start)?) {
            return Ok(true);
        }
        if value.len() < 10 || dated(value) {
            return Ok(false);
        }
        self.bank_near(start)
    }

    // -- output ----------------------------------------------------------------------------------

    /// `round(score, 4)` as a Python float, one object per distinct score.
    fn score_object(&self, score: f64) -> PyResult<PyObject> {
        let bits = score.to_bits();
        let mut cache = self.scores.borrow_mut();
        if let Some((_, obj)) = cache.iter().find(|(b, _)| *b == bits) {
            return Ok(obj.clone_ref(self.py()));
        }
        let obj = round4(score).into_pyobject(self.py())?.into_any().unbind();
        if cache.len() < 64 {
            cache.push((bits, obj.clone_ref(self.py())));
        }
        Ok(obj)
    }

    fn emit(&self, t: usize, start: usize, end: usize, score: f64, value: &[u8]) -> PyResult<()> {
        if score < self.c.threshold[t] {
            return Ok(());
        }
        let py = self.py();
        let value = std::str::from_utf8(value).unwrap_or_default();
        let mut mac = self.c.mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (i, b) in digest.iter().enumerate() {
            hex[2 * i] = HEX[(b >> 4) as usize];
            hex[2 * i + 1] = HEX[(b & 15) as usize];
        }
        if let Some(json) = &self.k.json {
            let mut buf = self.mask_buf.borrow_mut();
            mask_into(t, value.as_bytes(), &mut buf);
            return self.emit_json(&mut json.borrow_mut(), t, start, end, score, &buf, &hex);
        }
        let masked = {
            let mut buf = self.mask_buf.borrow_mut();
            mask_into(t, value.as_bytes(), &mut buf);
            ascii_str(py, &buf)?
        };
        let fields: [PyObject; 8] = [
            self.c.type_names[t].clone_ref(py).into_any(),
            (self.k.base + start).into_pyobject(py)?.into_any().unbind(),
            (self.k.base + end).into_pyobject(py)?.into_any().unbind(),
            self.score_object(score)?,
            masked,
            ascii_str(py, &hex)?,
            self.c.categories[t].clone_ref(py),
            py.None(),
        ];
        // A `Finding` built as its frozen dataclass __init__ builds it (every slot set, `box`
        // None), without the per-field object.__setattr__ calls of a frozen __init__: straight
        // into its slots when they are plain object slots.
        let cls = self.c.finding_cls.bind(py);
        unsafe {
            let tp = cls.as_ptr() as *mut ffi::PyTypeObject;
            let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            let obj = alloc(tp, 0);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            let obj: Bound<'py, PyAny> = Bound::from_owned_ptr(py, obj);
            match &self.c.slot_offsets {
                Some(offsets) => {
                    for (&offset, value) in offsets.iter().zip(fields) {
                        // the slot is NULL in a fresh object: it takes the reference
                        let slot = (obj.as_ptr() as *mut u8).offset(offset) as *mut *mut ffi::PyObject;
                        *slot = value.into_ptr();
                    }
                }
                None => {
                    for (name, value) in self.c.attr_names.iter().zip(fields.iter()) {
                        if ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) < 0 {
                            return Err(PyErr::fetch(py));
                        }
                    }
                }
            }
            // A finding holds strings, numbers and its category only: it can be in no reference
            // cycle, so the cycle collector need not track (and re-walk) the many a dense text has.
            if ffi::PyType_IS_GC(tp) != 0 {
                ffi::PyObject_GC_UnTrack(obj.as_ptr() as *mut std::ffi::c_void);
            }
            self.k.out.append(obj)?;
        }
        let (ps, pe, ok) = self.order.get();
        let span = (self.k.base + start, self.k.base + end);
        self.order.set((span.0, span.1, ok && (ps, pe) <= span));
        Ok(())
    }

    /// `emit`'s finding as `finding_json` writes it, appended to the JSON output.
    #[allow(clippy::too_many_arguments)]
    fn emit_json(
        &self, json: &mut JsonOut, t: usize, start: usize, end: usize, score: f64, masked: &[u8],
        hex: &[u8; 64],
    ) -> PyResult<()> {
        let bits = score.to_bits();
        let conf = match json.confidences.iter().position(|(b, _)| *b == bits) {
            Some(i) => i,
            None => {
                let obj = self.score_object(score)?;
                let text = obj.bind(self.py()).repr()?.to_str()?.to_owned();
                json.confidences.push((bits, text));
                json.confidences.len() - 1
            }
        };
        let (s, e) = (self.k.base + start, self.k.base + end);
        let off = json.text.len();
        let JsonOut { heads, mids, confidences, text: out, .. } = json;
        out.extend_from_slice(heads[t].as_bytes());
        out.extend_from_slice(s.to_string().as_bytes());
        out.extend_from_slice(b", \"end\": ");
        out.extend_from_slice(e.to_string().as_bytes());
        out.extend_from_slice(b", \"masked\": ");
        match std::str::from_utf8(masked) {
            Ok(m) => json_str(m, out),
            Err(_) => json_str(&String::from_utf8_lossy(masked), out),
        }
        out.extend_from_slice(b", \"confidence\": ");
        out.extend_from_slice(confidences[conf].1.as_bytes());
        out.extend_from_slice(mids[t].as_bytes());
        out.push(b'"');
        out.extend_from_slice(hex);
        out.extend_from_slice(b"\"}");
        let len = out.len() - off;
        json.spans.push((s, e, off, len));
        let (ps, pe, ok) = self.order.get();
        self.order.set((s, e, ok && (ps, pe) <= (s, e)));
        Ok(())
    }

    // -- the engine's `_scan` --------------------------------------------------------------------

    fn run(&self, lo: usize, hi: usize) -> PyResult<()> {
        let size = self.t.len();
        let mut token_end: usize = 0;
        let mut have_token_end = false;
        let mut p = lo;
        while p < size {
            let c = self.at(p);
            if !(is_d(c) || is_at(c)) {
                if c == 0x0A {
                    self.last_nl.set(p); // `line` takes a line's start from here
                }
                p += 1;
                // 16 at a time past text with no digit, @ or newline (a test without branches;
                // its few false alarms, such as ':' or '：', go the one-by-one way)
                while p + 16 <= size
                    && !self.t[p..p + 16].iter().fold(false, |acc, u| {
                        let c = u.cp();
                        acc | (c.wrapping_sub(0x30) <= 0x10) | (c.wrapping_sub(0xFF10) <= 0x10) | (c == 0x0A)
                    })
                {
                    p += 16;
                }
                continue;
            }
            let Some(e0) = self.candidate_at(p) else {
                p += 1;
                continue;
            };
            let s = p;
            p = e0;
            if s >= hi {
                break;
            }
            if e0 - s == 1 && is_at(c) {
                self.email(s)?;
                continue;
            }
            if have_token_end && s < token_end {
                continue;
            }
            let mut e = e0;
            let prev = if s > 0 { Some(self.at(s - 1)) } else { None };
            if self.ascii_digits(s, e) {
                let nxt = self.get(e);
                if !prev.is_some_and(prev_special) && !nxt.is_some_and(next_special) {
                    let n = e - s;
                    if (8..=MAX_DIGITS).contains(&n) {
                        let tok = self.bytes(s, e);
                        if self.plausible_or_gated(s, &tok)? {
                            self.plain(s, e, tok)?;
                        }
                    }
                    continue;
                }
            } else if e - s == 18 && matches!(self.at(s + 17), 0x58 | 0x78) && self.ascii_digits(s, s + 17) {
                let nxt = self.get(e);
                if !prev.is_some_and(prev_special) && !nxt.is_some_and(next_special) {
                    let mut tok = self.bytes(s, s + 17);
                    tok.push(b'X');
                    self.plain_x(s, e, tok)?;
                    continue;
                }
            }
            if e - s >= 5 && is_sep(self.at(e - 5)) && e + 1 < size && is_sep(self.at(e)) {
                if let Some(t_end) = self.short_tail(e) {
                    e = t_end;
                }
            }
            let tok = self.bytes(s, e);
            let mut glued: Label = None;
            let mut nxt = self.get(e);
            let last = tok[tok.len() - 1];
            if (last == b'X' || last == b'x')
                && !(tok.len() >= 18 && tok[tok.len() - 2].is_ascii_digit())
            {
                nxt = Some(0x58); // a trailing letter that cannot be an ID check char
            }
            if nxt.is_some_and(is_at) || prev.is_some_and(is_at) {
                continue;
            }
            if (prev == Some(0x5F) && s >= 2 && is_word(self.at(s - 2)))
                || (nxt == Some(0x5F) && e + 1 < size && is_word(self.at(e + 1)))
            {
                continue;
            }
            if prev.is_some_and(is_d) {
                continue;
            }
            if prev.is_some_and(is_letter) || nxt.is_some_and(is_letter) {
                let (t_end, kind, go) = self.glued(s, e)?;
                token_end = t_end;
                have_token_end = true;
                glued = kind;
                if !go {
                    continue;
                }
            }
            if prev == Some(0x2E) && s >= 2 && is_d(self.at(s - 2)) {
                continue;
            }
            if prev.is_some_and(is_plus) && !tok.starts_with(b"86") {
                continue;
            }
            if prev == Some(0x2D) && s >= 2 && {
                let b = self.at(s - 2);
                is_ascii_digit(b) || is_ascii_letter(b)
            } && self.prefix_back(s.saturating_sub(5), s).is_none()
            {
                continue;
            }
            if glued.is_none() && tok.iter().all(|b| b.is_ascii_digit()) {
                let n = tok.len();
                if !(8..=MAX_DIGITS).contains(&n) || !self.plausible_or_gated(s, &tok)? {
                    continue;
                }
                let groups = vec![(s, e, tok)];
                self.identifier(&groups, 0, 0, None, true)?;
                continue;
            }
            self.digits(s, e, tok, glued)?;
        }
        Ok(())
    }

    fn plausible_or_gated(&self, s: usize, tok: &[u8]) -> PyResult<bool> {
        Ok(self.c.plausible(tok) || self.hinted(s) || self.gate(s, tok)?)
    }

    /// `engine._SHORT_TAIL.match(text, e)`: SEP{1,2} D{1,2} X? not followed by a digit or letter.
    fn short_tail(&self, e: usize) -> Option<usize> {
        let seps = if self.get(e + 1).is_some_and(is_sep) { 2 } else { 1 };
        for ns in (1..=seps).rev() {
            let q = e + ns;
            let nd = self.digits_from(q).min(2);
            for d in (1..=nd).rev() {
                let q2 = q + d;
                let with_x = if self.get(q2).is_some_and(is_xch) { vec![q2 + 1, q2] } else { vec![q2] };
                for end in with_x {
                    let ahead = self.get(end);
                    if !ahead.is_some_and(|c| is_d(c) || is_ascii_letter(c)) {
                        return Some(end);
                    }
                }
            }
        }
        None
    }

    /// `engine._glued`: (end of the code, label given by glued letters, go on as a number).
    fn glued(&self, s: usize, e: usize) -> PyResult<(usize, Label, bool)> {
        let mut k = 0;
        while k < 24 && s > k && is_alnum(self.at(s - k - 1)) {
            k += 1;
        }
        let t_start = s - k;
        let mut f = 0;
        while f < 24 && e + f < self.t.len() && is_alnum(self.at(e + f)) {
            f += 1;
        }
        let t_end = e + f;
        if t_start < s {
            let mut run = 0;
            for i in t_start..s {
                if is_d(self.at(i)) {
                    run += 1;
                    if run >= 7 {
                        return Ok((t_end, None, false)); // handled at the code's first digit run
                    }
                } else {
                    run = 0;
                }
            }
        }
        let code: Vec<u8> = self.bytes(t_start, t_end).to_ascii_uppercase();
        let mut label: Option<Label> = None;
        if code.len() == 18 && !code.iter().all(|b| b.is_ascii_digit()) {
            let l = self.label(t_start)?;
            label = Some(l);
            if let Some(sc) = self.c.uscc_score(&code, l, self.k.today) {
                self.emit(USCC, t_start, t_end, sc, &code)?;
                return Ok((t_end, None, false));
            }
        }
        if code.len() <= 10 && code[0].is_ascii_alphabetic() {
            let mut l = match label {
                Some(Some(l)) => Some(l),
                _ => self.label(t_start)?,
            };
            if matches!(l, None | Some(K::Id)) && self.passport_before(t_start)? {
                l = Some(K::Passport);
            }
            if l == Some(K::Passport) && passport_format(&code) {
                self.emit(PASSPORT, t_start, t_end, 0.85, &code)?;
                return Ok((t_end, None, false));
            }
        }
        if t_end == e && t_start < s {
            if let Some(kind) = self.c.glued.get(&code[..s - t_start]) {
                return Ok((t_end, *kind, true));
            }
        }
        Ok((t_end, None, false))
    }

    /// `engine._digits`: split a (possibly grouped) digit run into identifiers.
    fn digits(&self, s: usize, e: usize, tok: Vec<u8>, glued: Label) -> PyResult<()> {
        let all_digits = |t: &[u8]| !t.is_empty() && t.iter().all(|b| b.is_ascii_digit());
        let groups: Vec<(usize, usize, Vec<u8>)> = if all_digits(&tok)
            || (tok[tok.len() - 1] == b'X' && all_digits(&tok[..tok.len() - 1]))
        {
            vec![(s, e, tok)]
        } else {
            let tok = tok.to_ascii_uppercase();
            let mut out = Vec::new();
            let mut i = 0;
            while i < tok.len() {
                if tok[i].is_ascii_digit() {
                    let a = i;
                    while i < tok.len() && tok[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i < tok.len() && tok[i] == b'X' {
                        i += 1;
                    }
                    out.push((s + a, s + i, tok[a..i].to_vec()));
                } else {
                    i += 1;
                }
            }
            out
        };
        let n = groups.len();
        let mut i = 0;
        while i < n {
            let mut j_max = i;
            let mut total = groups[i].2.len();
            while j_max + 1 < n && total + groups[j_max + 1].2.len() <= MAX_DIGITS {
                j_max += 1;
                total += groups[j_max].2.len();
            }
            let mut used = false;
            for j in (i..=j_max).rev() {
                if (i > 0 && is_dash(self.at(groups[i].0 - 1)))
                    || (j + 1 < n && is_dash(self.at(groups[j].1)))
                {
                    continue;
                }
                if self.identifier(&groups, i, j, if i == 0 { glued } else { None }, false)? {
                    i = j + 1;
                    used = true;
                    break;
                }
            }
            if !used {
                i += 1;
            }
        }
        Ok(())
    }

    /// `engine._plain`.
    fn plain(&self, start: usize, end: usize, value: Vec<u8>) -> PyResult<()> {
        let mut label = self.label(start)?;
        if self.amount_after(end) {
            label = Some(K::Neg);
        }
        let d = self.decide(start, value, label, false, true, false, false, false)?;
        if d.t != NONE && d.score >= self.c.threshold[d.t] {
            self.emit(d.t, d.start, end, d.score, &d.value)?;
        }
        Ok(())
    }

    /// `engine._plain_x`.
    fn plain_x(&self, start: usize, end: usize, value: Vec<u8>) -> PyResult<()> {
        let mut label = self.label(start)?;
        if self.amount_after(end) {
            label = Some(K::Neg);
        }
        if let Some(sc) = self.c.resident_score(self.py(), &value, label, self.k.today)? {
            if sc >= self.c.threshold[RESIDENT_ID] {
                self.emit(RESIDENT_ID, start, end, sc, &value)?;
            }
            return Ok(());
        }
        if let Some(sc) = self.c.uscc_score(&value, label, self.k.today) {
            self.emit(USCC, start, end, sc, &value)?;
        }
        Ok(())
    }

    /// `engine._identifier`.
    fn identifier(
        &self, groups: &[(usize, usize, Vec<u8>)], i: usize, j: usize, glued: Label, gated: bool,
    ) -> PyResult<bool> {
        let (start, end) = (groups[i].0, groups[j].1);
        let value: Vec<u8> = groups[i..=j].iter().flat_map(|g| g.2.iter().copied()).collect();
        let n = value.len();
        if !(8..=MAX_DIGITS).contains(&n) {
            return Ok(false);
        }
        let x_at = value.iter().position(|&b| b == b'X');
        let has_x = x_at.is_some();
        if has_x && (n != 18 || x_at != Some(17)) {
            return Ok(false);
        }
        if !(gated || glued.is_some() || has_x || self.c.plausible(&value) || self.hinted(start)
            || self.gate(start, &value)?)
        {
            return Ok(false);
        }
        let mut label = match glued {
            Some(g) => Some(g),
            None => self.label(start)?,
        };
        if self.amount_after(end) {
            label = Some(K::Neg);
        }
        let shape: Vec<u8> = if j > i {
            groups[i..=j].iter().map(|g| g.2.len().min(255) as u8).collect()
        } else {
            Vec::new()
        };
        let grouping = !shape.is_empty() && self.c.groupings.contains(&shape);
        let fours = !shape.is_empty() && {
            let (last, rest) = shape.split_last().unwrap_or((&0, &[]));
            rest.iter().all(|&x| x == 4) && (1..=4).contains(last)
        };
        let d = self.decide(start, value, label, has_x, i == 0, j > i, grouping, fours)?;
        if d.t == NONE {
            return Ok(false);
        }
        if d.score >= self.c.threshold[d.t] {
            self.emit(d.t, d.start, end, d.score, &d.value)?;
            return Ok(true);
        }
        Ok(d.score >= 0.3)
    }

    /// `engine._decide`.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self, mut start: usize, value: Vec<u8>, mut label: Label, has_x: bool, first: bool,
        joined: bool, grouping: bool, fours: bool,
    ) -> PyResult<Decision> {
        let py = self.py();
        let today = self.k.today;
        let n = value.len();
        let mut best_t = NONE;
        let mut best = 0.0f64;
        let mut best_value: Option<Vec<u8>> = None; // None: `value` itself
        if n == 18 {
            if let Some(sc) = self.c.resident_score(py, &value, label, today)? {
                if label != Some(K::Neg) {
                    return Ok(Decision { t: RESIDENT_ID, score: sc, value, start });
                }
                best_t = RESIDENT_ID;
                best = sc;
            }
            if !has_x {
                if let Some(sc) = self.c.uscc_score(&value, label, today) {
                    if sc > best {
                        best_t = USCC;
                        best = sc;
                    }
                }
            }
        }
        if has_x {
            return Ok(Decision { t: best_t, score: best, value, start });
        }
        if n == 11 {
            let prefix = if first && start > 0 && prefix_last(self.at(start - 1)) {
                self.prefix_back(start.saturating_sub(5), start)
            } else {
                None
            };
            if let Some(sc) = self.c.mobile_score(py, &value, label, joined || prefix.is_some())? {
                if sc > best {
                    best_t = MOBILE;
                    best = sc;
                    if let Some(ps) = prefix {
                        let closed = (ps..start).any(|q| matches!(self.at(q), 0x29 | 0xFF09));
                        start = ps;
                        if closed && start > 0 && matches!(self.at(start - 1), 0x28 | 0xFF08) {
                            start -= 1;
                        }
                    }
                }
            }
        } else if (n == 13 && value.starts_with(b"86")) || (n == 15 && value.starts_with(b"0086")) {
            let tail = value[n - 11..].to_vec();
            if let Some(sc) = self.c.mobile_score(py, &tail, label, true)? {
                if sc > best {
                    best_t = MOBILE;
                    best = sc;
                    best_value = Some(tail);
                    if n == 13 && first && start > 0 && is_plus(self.at(start - 1)) {
                        start -= 1;
                    }
                }
            }
        }
        if (13..=19).contains(&n) {
            let mut sc = self.c.card_score(&value, label, grouping, false, today);
            if label.is_none() && sc.is_none_or(|x| x < 0.8) && best < 0.5 {
                let (name, payment) = self.row(start)?;
                if name || payment {
                    sc = self.c.card_score(&value, label, grouping, true, today);
                }
            }
            if let Some(sc) = sc {
                if sc > best {
                    best_t = BANK_CARD;
                    best = sc;
                    best_value = None;
                }
            }
        }
        if n == 15 {
            if label == Some(K::Id) && self.c.province(&value) {
                let mut ymd = b"19".to_vec();
                ymd.extend_from_slice(&value[6..12]);
                if self.c.birth_ok(&ymd, today) && 0.85 > best {
                    best_t = RESIDENT_ID;
                    best = 0.85;
                    best_value = None;
                }
            }
        } else if n == 9 {
            if matches!(label, None | Some(K::Id)) && self.passport_before(start)? {
                label = Some(K::Passport);
            }
            if label == Some(K::Passport) && passport_format(&value) && 0.85 > best {
                best_t = PASSPORT;
                best = 0.85;
            }
        }
        if label == Some(K::Account) {
            if best_t == BANK_CARD && self.c.chinese_bin(&value).is_some() {
                let v = best_value.unwrap_or(value);
                return Ok(Decision { t: best_t, score: best, value: v, start });
            }
            if let Some(sc) = account_score(&value, label, false) {
                return Ok(Decision { t: ACCOUNT, score: sc.max(best), value, start });
            }
        } else if best < 0.5 && label.is_none() && (!joined || fours) && self.bank_near(start)? {
            if let Some(sc) = account_score(&value, None, true) {
                best_t = ACCOUNT;
                best = sc;
                best_value = None;
            }
        }
        let v = best_value.unwrap_or(value);
        Ok(Decision { t: best_t, score: best, value: v, start })
    }

    /// `engine._email` with `email.find`.
    fn email(&self, at: usize) -> PyResult<()> {
        let local = |c: u32| is_word(c) || matches!(c, 0x2E | 0x5F | 0x25 | 0x2B | 0x2D);
        let mut k = 0;
        while k < 64 && at > k && local(self.at(at - k - 1)) {
            k += 1;
        }
        if k == 0 {
            return Ok(());
        }
        let mut start = at - k;
        while start < at && matches!(self.at(start), 0x2E | 0x2D | 0x2B | 0x25) {
            start += 1;
        }
        if start == at || self.at(at - 1) == 0x2E {
            return Ok(());
        }
        let hi = (at + 1 + 540).min(self.t.len());
        // the domain pattern reads only [A-Za-z0-9.-] and then one other character (or the end):
        // the window is those characters and, for the one after them, a space
        let mut window = String::with_capacity(64);
        for i in at + 1..hi {
            let c = self.at(i);
            if is_word(c) || c == 0x2E || c == 0x2D {
                window.push(c as u8 as char);
            } else {
                window.push(' ');
                break;
            }
        }
        let Some(caps) = self.c.domain.captures(&window) else {
            return Ok(());
        };
        let dom = caps.get(1).map(|m| m.as_str()).unwrap_or_default();
        let end = at + 1 + dom.len(); // the domain is ASCII: bytes are characters
        let mut value = self.bytes(start, at);
        value.push(b'@');
        value.extend(dom.bytes().map(|b| b.to_ascii_lowercase()));
        self.emit(EMAIL, start, end, 0.95, &value)
    }
}

#[pymodule]
fn guard_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
