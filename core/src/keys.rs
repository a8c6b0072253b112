//! The key written straight before a value (`structure._KEY_BEFORE`), matched in the core's pass.
//!
//! The pattern, as `structure._KEY_BEFORE.search(text, pos, end)` runs it, where the match must
//! end at `end` (the value's first character) and the leftmost start wins:
//!
//! ```text
//! ["']? ( (\\uXXXX | [A-Za-z_\u3400-\u9fff]) (\\uXXXX | [\w.\-()（）]){0,40} ) ["']?
//!       [ \t]* [:=：] [ \t]* ["'\[]? [ \t]* ['`]? \Z
//! | < ( [A-Za-z_] [\w.\-:]{0,40} ) (\s [^<>]{0,80})? > [ \t]* \Z
//! ```
//!
//! Every element of a key is decided by its first character (an escape starts with `\`, which no
//! class holds), and no character that may follow a key can continue it, so the regex's
//! backtracking never tries a shorter key that could succeed: at each start the match, and its
//! group, is the one chain of elements, checked against the fixed tail. The two branches end in
//! different characters (`>` and blanks; a separator and quotes, brackets and blanks), so the end
//! says which one to try, and from which starts. `\w` and `\s` are
//! Python's (`str.isalnum` or `_`, `str.isspace`), asked as the rest of the core asks them. The
//! key's classification stays in Python (`structure._key_kind`), asked once per distinct key.

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::{is_ascii_letter, label_of, poisoned, py_space, Label, Scan, Unit};

/// `structure._KEY_WINDOW`: how far before the value the pattern's search starts.
pub(crate) const KEY_WINDOW: usize = 100;
/// The `{0,40}` of a key's elements after its first, and of an element name's characters.
const MAX_REST: u8 = 40;
/// The `{0,80}` of an element's attributes.
const MAX_ATTRS: usize = 80;
/// Distinct keys kept classified (a document has a few dozen; a hostile one is bounded).
const KIND_CACHE: usize = 8192;

#[inline]
fn hex(c: u32) -> bool {
    matches!(c, 0x30..=0x39 | 0x41..=0x46 | 0x61..=0x66)
}
#[inline]
fn quote(c: u32) -> bool {
    c == 0x22 || c == 0x27
}
#[inline]
fn blank(c: u32) -> bool {
    c == 0x20 || c == 0x09
}
/// `[A-Za-z_\u3400-\u9fff]`: a key's first character (when not an escape).
#[inline]
fn key_head(c: u32) -> bool {
    is_ascii_letter(c) || c == 0x5F || (0x3400..=0x9FFF).contains(&c)
}

impl<'a, 'py, U: Unit> Scan<'a, 'py, U> {
    /// `\\u[0-9a-fA-F]{4}` at text[i..], within text[..e].
    #[inline]
    fn escape_at(&self, i: usize, e: usize) -> bool {
        i + 6 <= e
            && self.at(i) == 0x5C
            && self.at(i + 1) == 0x75
            && (i + 2..i + 6).all(|j| hex(self.at(j)))
    }

    /// `\w` as Python's str pattern reads it.
    #[inline]
    fn word(&self, c: u32) -> PyResult<bool> {
        Ok(c == 0x5F || self.c.py_alnum(self.py(), c)?)
    }

    /// `["']?[ \t]*[:=：][ \t]*["'\[]?[ \t]*['`]?` matches text[p..e] whole.
    fn key_tail(&self, mut p: usize, e: usize) -> bool {
        if p < e && quote(self.at(p)) {
            p += 1; // not taking it leaves a quote where a blank or a separator must be
        }
        while p < e && blank(self.at(p)) {
            p += 1;
        }
        if p >= e || !matches!(self.at(p), 0x3A | 0x3D | 0xFF1A) {
            return false;
        }
        p += 1;
        while p < e && blank(self.at(p)) {
            p += 1;
        }
        let closes = |q: usize| q == e || (q + 1 == e && matches!(self.at(q), 0x27 | 0x60));
        if closes(p) {
            return true;
        }
        if p < e && matches!(self.at(p), 0x22 | 0x27 | 0x5B) {
            let mut q = p + 1;
            while q < e && blank(self.at(q)) {
                q += 1;
            }
            return closes(q);
        }
        false
    }

    /// `(\s[^<>]{0,80})?>[ \t]*\Z` matches text[q..e] whole.
    fn element_tail(&self, q: usize, e: usize) -> bool {
        let blanks_to_end = |mut r: usize| {
            while r < e && blank(self.at(r)) {
                r += 1;
            }
            r == e
        };
        if q >= e {
            return false;
        }
        let c = self.at(q);
        if py_space(c) {
            // the attributes run to the first `<` or `>`: only a `>` there can close the element
            let mut r = q + 1;
            while r < e && r - (q + 1) < MAX_ATTRS && !matches!(self.at(r), 0x3C | 0x3E) {
                r += 1;
            }
            return r < e && self.at(r) == 0x3E && blanks_to_end(r + 1);
        }
        c == 0x3E && blanks_to_end(q + 1)
    }

    /// `[\w.\-()（）]`: a key's character after its first (escapes aside).
    #[inline]
    fn key_char(&self, c: u32) -> PyResult<bool> {
        Ok(matches!(c, 0x2E | 0x2D | 0x28 | 0x29 | 0xFF08 | 0xFF09) || self.word(c)?)
    }

    /// `_KEY_BEFORE.search(text, max(ls, e - KEY_WINDOW), e)`: the span of its key group.
    ///
    /// The text before `e` says which branch can match: a `>` before the closing blanks, the
    /// element; else a separator before the closing quotes and blanks, the key. Only the starts
    /// from which that branch can reach its tail are tried, leftmost first (as the search does).
    pub(crate) fn key_pattern(&self, ls: usize, e: usize) -> PyResult<Option<(usize, usize)>> {
        let pos = ls.max(e.saturating_sub(KEY_WINDOW));
        let mut g = e;
        while g > pos && blank(self.at(g - 1)) {
            g -= 1;
        }
        if g > pos && self.at(g - 1) == 0x3E {
            // `<name ...>`: neither a name nor its attributes hold a `<`, so the element starts at
            // the last `<` before its `>`
            let mut s = g - 1;
            loop {
                if s == pos {
                    return Ok(None);
                }
                s -= 1;
                if self.at(s) == 0x3C {
                    break;
                }
            }
            if s + 1 < e && (is_ascii_letter(self.at(s + 1)) || self.at(s + 1) == 0x5F) {
                let mut q = s + 2;
                while q < e && q - (s + 2) < MAX_REST as usize {
                    let d = self.at(q);
                    if !(matches!(d, 0x2E | 0x2D | 0x3A) || self.word(d)?) {
                        break;
                    }
                    q += 1;
                }
                if self.element_tail(q, e) {
                    return Ok(Some((s + 1, q)));
                }
            }
            return Ok(None);
        }
        // `key": "`: the separator is the last one (what follows it holds none), the key ends
        // before the quote and blanks before it, and it starts in the run of key characters (and
        // escapes) there, or at the quote before that run
        let mut j = e;
        while j > pos && matches!(self.at(j - 1), 0x20 | 0x09 | 0x22 | 0x27 | 0x5B | 0x60) {
            j -= 1;
        }
        if j == pos || !matches!(self.at(j - 1), 0x3A | 0x3D | 0xFF1A) {
            return Ok(None);
        }
        let mut lo = j - 1;
        while lo > pos && blank(self.at(lo - 1)) {
            lo -= 1;
        }
        if lo > pos && quote(self.at(lo - 1)) {
            lo -= 1;
        }
        while lo > pos && (self.at(lo - 1) == 0x5C || self.key_char(self.at(lo - 1))?) {
            lo -= 1;
        }
        if lo > pos && quote(self.at(lo - 1)) {
            lo -= 1;
        }
        // chain_end[i] / chain_len[i]: where the run of key elements (escapes, key characters)
        // starting at lo + i ends, and how many it has (41 stands for "more than 40")
        let n = e - lo;
        let mut chain_end = [0usize; KEY_WINDOW + 1];
        let mut chain_len = [0u8; KEY_WINDOW + 1];
        chain_end[n] = e;
        for i in (0..n).rev() {
            let b = lo + i;
            let step = if self.escape_at(b, e) {
                6
            } else if self.key_char(self.at(b))? {
                1
            } else {
                0
            };
            if step == 0 {
                chain_end[i] = b;
                chain_len[i] = 0;
            } else {
                chain_end[i] = chain_end[i + step];
                chain_len[i] = (chain_len[i + step] + 1).min(MAX_REST + 1);
            }
        }
        for s in lo..e {
            let c = self.at(s);
            let k0 = if quote(c) { s + 1 } else { s };
            if k0 >= e {
                continue;
            }
            let h = if self.escape_at(k0, e) {
                k0 + 6
            } else if key_head(self.at(k0)) {
                k0 + 1
            } else {
                continue;
            };
            let i = h - lo;
            if chain_len[i] <= MAX_REST && self.key_tail(chain_end[i], e) {
                return Ok(Some((k0, chain_end[i])));
            }
        }
        Ok(None)
    }

    /// `structure._key_kind` of text[a..b], cached per key.
    pub(crate) fn key_kind(&self, a: usize, b: usize) -> PyResult<Label> {
        // a key's characters are word characters, escapes and punctuation: never a surrogate
        let key: String =
            (a..b).map(|i| char::from_u32(self.at(i)).unwrap_or('\u{FFFD}')).collect();
        if let Some(&kind) = self.c.key_kinds.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(kind);
        }
        let py = self.py();
        let kind = label_of(&self.c.key_kind.bind(py).call1((PyString::new(py, &key),))?)?;
        let mut kinds = self.c.key_kinds.lock().map_err(|_| poisoned())?;
        if kinds.len() >= KIND_CACHE {
            kinds.clear();
        }
        kinds.insert(key, kind);
        Ok(kind)
    }
}
