//! The document structure of `guard.scan.structure.Layout`, run in the core's pass.
//!
//! A port of the layout's per-candidate questions (the current line, its table cells, the column
//! header over a cell or an aligned column, the record's bank / name / payment hints) so that a
//! candidate costs no call into Python. The state is the Python `Layout` object's own, read from it
//! when a scan starts and written back when it ends, so the two engines can share one `Layout` per
//! document (and a streamed document keeps its header from piece to piece). What stays in Python,
//! called once per line and not per candidate: classifying a header row (`structure._header_of`,
//! with its key words and context words). The key before a `key: value` candidate is keys.rs's.

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::{label_of, Label, Scan, Unit, K};

/// `structure.HEADER_LOOKBACK`.
const HEADER_LOOKBACK: usize = 4096;
/// `structure._MAX_HEADER_LINE`.
const MAX_HEADER_LINE: usize = 1024;
/// `structure.ROW_BEHIND`, `structure.ROW_AHEAD`.
const ROW_BEHIND: usize = 120;
const ROW_AHEAD: usize = 200;
const WINDOW: usize = 24;

/// A table's header row (`structure._Header`), with the Python object it came from.
pub(crate) struct Header {
    obj: Py<PyAny>,
    delim: Option<u32>,
    kinds: Vec<Label>,
    spans: Vec<(usize, usize)>,
    named: bool,
}

/// The record hints of one candidate (`structure.RowHints`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Hints {
    pub bank: bool,
    pub name: bool,
    pub payment: bool,
}

/// `Layout`'s state, field for field.
pub(crate) struct Lay {
    header: Option<Rc<Header>>,
    seen: usize,
    ls: isize,
    le: isize,
    cells: Option<Vec<(usize, usize)>>,
    cell_starts: Vec<usize>,
    hints: Option<Hints>,
    hints_at: isize,
    wpos: usize,
    wcol: usize,
}

fn header_of_obj(obj: &Bound<'_, PyAny>) -> PyResult<Option<Rc<Header>>> {
    if obj.is_none() {
        return Ok(None);
    }
    let d = obj.getattr("delimiter")?;
    let delim = if d.is_none() {
        None
    } else {
        let s: String = d.extract()?;
        s.chars().next().map(|c| c as u32)
    };
    let mut kinds = Vec::new();
    for k in obj.getattr("kinds")?.try_iter()? {
        kinds.push(label_of(&k?)?);
    }
    let spans: Vec<(usize, usize)> = obj.getattr("spans")?.extract()?;
    let named = kinds.contains(&Some(K::Name));
    Ok(Some(Rc::new(Header { obj: obj.clone().unbind(), delim, kinds, spans, named })))
}

impl Lay {
    /// The state of a Python `Layout`.
    pub(crate) fn read(layout: &Bound<'_, PyAny>) -> PyResult<Lay> {
        let header = header_of_obj(&layout.getattr("_header")?)?;
        let cells_obj = layout.getattr("_cells")?;
        let cells: Option<Vec<(usize, usize)>> =
            if cells_obj.is_none() { None } else { Some(cells_obj.extract()?) };
        let hints_obj = layout.getattr("_hints")?;
        let hints = if hints_obj.is_none() {
            None
        } else {
            Some(Hints {
                bank: hints_obj.getattr("bank")?.is_truthy()?,
                name: hints_obj.getattr("name")?.is_truthy()?,
                payment: hints_obj.getattr("payment")?.is_truthy()?,
            })
        };
        Ok(Lay {
            header,
            seen: layout.getattr("_seen")?.extract()?,
            ls: layout.getattr("_ls")?.extract()?,
            le: layout.getattr("_le")?.extract()?,
            cells,
            cell_starts: layout.getattr("_cell_starts")?.extract()?,
            hints,
            hints_at: layout.getattr("_hints_at")?.extract()?,
            wpos: layout.getattr("_wpos")?.extract()?,
            wcol: layout.getattr("_wcol")?.extract()?,
        })
    }

    /// Write the state back to the Python `Layout` (its record-hint cache is dropped: the
    /// layout recomputes those hints when asked again).
    pub(crate) fn write(&self, layout: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = layout.py();
        match &self.header {
            Some(h) => layout.setattr("_header", h.obj.bind(py))?,
            None => layout.setattr("_header", py.None())?,
        }
        layout.setattr("_seen", self.seen)?;
        layout.setattr("_ls", self.ls)?;
        layout.setattr("_le", self.le)?;
        match &self.cells {
            Some(cells) => {
                let list = PyList::empty(py);
                for &(a, b) in cells {
                    list.append(PyTuple::new(py, [a, b])?)?;
                }
                layout.setattr("_cells", list)?;
            }
            None => layout.setattr("_cells", py.None())?,
        }
        layout.setattr("_cell_starts", PyList::new(py, &self.cell_starts)?)?;
        layout.setattr("_hints", py.None())?;
        layout.setattr("_hints_at", self.hints_at)?;
        layout.setattr("_wpos", self.wpos)?;
        layout.setattr("_wcol", self.wcol)?;
        Ok(())
    }
}

/// `structure._WIDE`: characters two display columns wide.
#[inline]
fn wide(c: u32) -> bool {
    matches!(c, 0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0xA4CF | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6)
}

#[inline]
fn five_digit_char(c: u32) -> bool {
    (0x30..=0x39).contains(&c) || (0xFF10..=0xFF19).contains(&c)
}

const NL: u32 = 0x0A;

impl<'a, 'py, U: Unit> Scan<'a, 'py, U> {
    fn len(&self) -> usize {
        self.t.len()
    }

    /// `_TABULAR.search(text, ls, le)`: a delimiter, two spaces or an ideographic space.
    fn tabular(&self, ls: usize, le: usize) -> bool {
        let mut prev_space = false;
        for i in ls..le {
            let c = self.at(i);
            if matches!(c, 0x09 | 0x2C | 0x7C | 0x3B | 0x1F | 0x3000) {
                return true;
            }
            if c == 0x20 {
                if prev_space {
                    return true;
                }
                prev_space = true;
            } else {
                prev_space = false;
            }
        }
        false
    }

    /// `Layout._line`: the start of the candidate's line, the line's cells and the header above.
    pub(crate) fn line(&self, start: usize) -> PyResult<usize> {
        {
            let l = self.lay.borrow();
            let s = start as isize;
            if (l.ls <= s && s < l.le) || (s == l.le && l.ls >= 0) {
                return Ok(l.ls as usize);
            }
        }
        let floor = self.lay.borrow().le.max(0) as usize;
        // text.rfind("\n", floor, start) + 1, or floor: the candidate loop's last newline when it
        // has seen every character since (the usual case), else a look back
        let nl = self.last_nl.get();
        let ls = if nl != usize::MAX && floor <= nl && nl < start {
            nl + 1
        } else {
            let mut ls = floor;
            let mut i = start;
            while i > floor {
                i -= 1;
                if self.at(i) == NL {
                    ls = i + 1;
                    break;
                }
            }
            ls
        };
        // text.find("\n", start), and whether the line is a table row, in one pass from ls (no
        // newline stands between ls and start)
        let mut le = ls.min(start);
        let mut tab = false;
        let mut prev_space = false;
        if ls > start {
            le = start;
            while le < self.len() && self.at(le) != NL {
                le += 1;
            }
            tab = self.tabular(ls, le);
        } else {
            let size = self.len();
            while le < size {
                // 17 characters looked at, 16 passed, when they hold no newline, no delimiter
                // and no two spaces in a row (a test without branches)
                if !tab && le + 17 <= size {
                    let w = &self.t[le..le + 17];
                    let hit = (0..16).fold(prev_space & (w[0].cp() == 0x20), |acc, i| {
                        let c = w[i].cp();
                        acc | (c == NL) | (c == 0x09) | (c == 0x2C) | (c == 0x7C) | (c == 0x3B)
                            | (c == 0x1F) | (c == 0x3000) | ((c == 0x20) & (w[i + 1].cp() == 0x20))
                    });
                    if !hit {
                        prev_space = w[15].cp() == 0x20;
                        le += 16;
                        continue;
                    }
                } else if tab && le + 16 <= size
                    && !self.t[le..le + 16].iter().fold(false, |acc, u| acc | (u.cp() == NL))
                {
                    le += 16;
                    continue;
                }
                let c = self.at(le);
                if c == NL {
                    break;
                }
                if !tab {
                    if matches!(c, 0x09 | 0x2C | 0x7C | 0x3B | 0x1F | 0x3000) || (c == 0x20 && prev_space) {
                        tab = true;
                    }
                    prev_space = c == 0x20;
                }
                le += 1;
            }
        }
        if tab {
            let seen = self.lay.borrow().seen;
            if ls > seen {
                self.find_header(seen, ls)?;
            }
            let mut l = self.lay.borrow_mut();
            l.seen = l.seen.max(le + 1);
        }
        let mut l = self.lay.borrow_mut();
        l.ls = ls as isize;
        l.le = le as isize;
        l.hints = None;
        l.wpos = ls;
        l.wcol = 0;
        l.cells = None;
        if let Some(h) = l.header.clone() {
            if let Some(d) = h.delim {
                let mut e = le;
                while e > ls && self.at(e - 1) == 0x0D {
                    e -= 1; // line.rstrip("\r")
                }
                let cells = if e - ls < 65536 { self.split_cells(ls, e, d) } else { Vec::new() };
                let n = h.kinds.len();
                let m = cells.len();
                if n <= m + 1 && m <= n + 1 && !(m + 1 == n && n == 2) {
                    l.cell_starts = cells.iter().map(|&(a, _)| ls + a).collect();
                    l.cells = Some(cells);
                }
            }
        }
        Ok(ls)
    }

    /// `structure._split_cells(text[ls:e], d)`: (start, end) of each cell, relative to `ls`.
    pub(crate) fn split_cells(&self, ls: usize, e: usize, d: u32) -> Vec<(usize, usize)> {
        let n = e - ls;
        let at = |i: usize| self.at(ls + i);
        let mut out = Vec::new();
        if !(0..n).any(|i| at(i) == 0x22) {
            let mut pos = 0;
            for i in 0..n {
                if at(i) == d {
                    out.push((pos, i));
                    pos = i + 1;
                }
            }
            out.push((pos, n));
            return out;
        }
        // re.finditer of `[ \t]*"[^"]*(?:""[^"]*)*"[ \t]*|[^"d\n]*(?:"[^d\n]*)*`, keeping the
        // matches that start a cell (at 0 or right after a delimiter); the line has no newline
        let quoted = |pos: usize| -> Option<usize> {
            let mut q = pos;
            while q < n && matches!(at(q), 0x20 | 0x09) {
                q += 1;
            }
            if q >= n || at(q) != 0x22 {
                return None;
            }
            q += 1;
            let mut last_pair: Option<usize> = None;
            let close = loop {
                while q < n && at(q) != 0x22 {
                    q += 1;
                }
                if q >= n {
                    break last_pair?; // no lone quote: the last "" pair gives back its first
                }
                if q + 1 < n && at(q + 1) == 0x22 {
                    last_pair = Some(q);
                    q += 2;
                    continue;
                }
                break q;
            };
            let mut end = close + 1;
            while end < n && matches!(at(end), 0x20 | 0x09) {
                end += 1;
            }
            Some(end)
        };
        let mut pos = 0;
        let mut prev_empty = false;
        while pos <= n {
            let end = match quoted(pos) {
                Some(end) => end,
                None => {
                    let mut q = pos;
                    while q < n && at(q) != d {
                        q += 1;
                    }
                    q
                }
            };
            if end == pos && prev_empty {
                pos += 1; // an empty match right after an empty match is not taken
                prev_empty = false;
                continue;
            }
            if pos == 0 || at(pos - 1) == d {
                out.push((pos, end));
            }
            prev_empty = end == pos;
            pos = end;
        }
        out
    }

    /// `Layout._find_header`: the nearest header row in text[lo:hi] becomes current.
    fn find_header(&self, lo: usize, hi: usize) -> PyResult<()> {
        let floor = lo.max(hi.saturating_sub(HEADER_LOOKBACK));
        // the lines `_HEADERISH` matches: starting at a line start (never at a cut), 3 to 1024
        // characters, with a delimiter / two spaces / ideographic space, without 5 digits in a row
        let mut lines: Vec<(usize, usize)> = Vec::new();
        let mut p = floor;
        while p < hi {
            let mut q = p;
            while q < hi && self.at(q) != NL {
                q += 1;
            }
            let at_line_start = p == 0 || self.at(p - 1) == NL;
            let n = q - p;
            if at_line_start && (3..=MAX_HEADER_LINE).contains(&n) && self.tabular(p, q) {
                let mut run = 0;
                let mut digits5 = false;
                for i in p..q {
                    if five_digit_char(self.at(i)) {
                        run += 1;
                        if run >= 5 {
                            digits5 = true;
                            break;
                        }
                    } else {
                        run = 0;
                    }
                }
                if !digits5 {
                    lines.push((p, q));
                }
            }
            p = q + 1;
        }
        let py = self.py();
        for &(a, mut b) in lines.iter().rev() {
            while b > a && self.at(b - 1) == 0x0D {
                b -= 1;
            }
            let line = self.pystr(a, b);
            let found = self.k.header_of.call1((PyString::new(py, &line),))?;
            if let Some(h) = header_of_obj(&found)? {
                self.lay.borrow_mut().header = Some(h);
                return Ok(());
            }
        }
        Ok(())
    }

    fn pystr(&self, a: usize, b: usize) -> String {
        (a..b).map(|i| char::from_u32(self.at(i)).unwrap_or('\u{FFFD}')).collect()
    }

    fn cell_index(&self, l: &Lay, start: usize) -> isize {
        // bisect.bisect_right(cell_starts, start) - 1
        l.cell_starts.partition_point(|&x| x <= start) as isize - 1
    }

    /// `Layout.label`; `key_before` is the layout's key test (`_key_before`).
    pub(crate) fn layout_label(&self, start: usize) -> PyResult<Label> {
        let ls = self.line(start)?;
        if let Some(k) = self.key_before(ls, start)? {
            return Ok(Some(k));
        }
        let header = self.lay.borrow().header.clone();
        if let Some(h) = header {
            let cell = {
                let l = self.lay.borrow();
                match &l.cells {
                    Some(cells) => {
                        let i = self.cell_index(&l, start);
                        if i >= 0 && (i as usize) < cells.len() {
                            Some(Some((ls + cells[i as usize].0, i as usize)))
                        } else {
                            Some(None)
                        }
                    }
                    None => None,
                }
            };
            match cell {
                Some(Some((cs, i))) => {
                    let kind = h.kinds.get(i).copied().flatten();
                    if let Some(k) = kind {
                        if k != K::Name && k != K::Bank {
                            let inside = self.nearest_label(start, WINDOW.min(start - cs));
                            return Ok(inside.or(Some(k)));
                        }
                    }
                }
                Some(None) => {}
                None => {
                    if h.delim.is_none() && !h.spans.is_empty() {
                        if let Some(k) = self.aligned_kind(ls, start)? {
                            let mut gap = start;
                            while gap > ls && !matches!(self.at(gap - 1), 0x20 | 0x09 | 0x3000) {
                                gap -= 1;
                            }
                            let inside = self.nearest_label(start, WINDOW.min(start - gap));
                            return Ok(inside.or(Some(k)));
                        }
                    }
                }
            }
        }
        Ok(self.nearest_label(start, WINDOW))
    }

    /// `Layout.column`: the kind of the candidate's column header.
    pub(crate) fn layout_column(&self, start: usize) -> PyResult<Label> {
        let Some(header) = self.lay.borrow().header.clone() else {
            return Ok(None); // no table so far: nothing to look up
        };
        let _ = self.line(start)?;
        {
            let l = self.lay.borrow();
            if l.cells.is_some() {
                let i = self.cell_index(&l, start);
                return Ok(if i >= 0 { header.kinds.get(i as usize).copied().flatten() } else { None });
            }
        }
        if header.delim.is_none() {
            let ls = self.lay.borrow().ls.max(0) as usize;
            return self.aligned_kind(ls, start);
        }
        Ok(None)
    }

    /// `Layout._aligned_kind`: the aligned column the candidate's display columns overlap most.
    fn aligned_kind(&self, ls: usize, start: usize) -> PyResult<Label> {
        let Some(header) = self.lay.borrow().header.clone() else {
            return Ok(None);
        };
        let col = {
            let mut l = self.lay.borrow_mut();
            if start < l.wpos {
                l.wpos = ls;
                l.wcol = 0;
            }
            let w = (l.wpos..start).map(|i| if wide(self.at(i)) { 2 } else { 1 }).sum::<usize>();
            l.wcol += w;
            l.wpos = start;
            l.wcol
        };
        let mut end = start;
        let limit = self.len().min(start + 64);
        while end < limit {
            let c = self.at(end);
            if self.c.py_alnum(self.py(), c)?
                || (c == 0x20 && end + 1 < limit && self.c.py_digit(self.py(), self.at(end + 1))?)
            {
                end += 1;
            } else {
                break;
            }
        }
        let vend = (col + (end - start)) as i64;
        let col = col as i64;
        let mut best: Label = None;
        let mut best_overlap: i64 = 0;
        for (i, &(a, b)) in header.spans.iter().enumerate() {
            let (a, b) = (a as i64, b as i64);
            let nxt = header.spans.get(i + 1).map_or(b + 64, |s| s.0 as i64);
            let overlap = vend.min(b.max(nxt - 1)) - col.max(a);
            if overlap > best_overlap {
                best = header.kinds.get(i).copied().flatten();
                best_overlap = overlap;
            }
        }
        Ok(best)
    }

    /// `_BANK_IN_ROW` in text[lo:hi]; `sliced`: as a search of the slice (its edges are string
    /// edges for `\b`), else as `search(text, lo, hi)` (only the end is an edge).
    fn bank_in(&self, lo: usize, hi: usize, sliced: bool) -> PyResult<bool> {
        if hi <= lo {
            return Ok(false);
        }
        if self.c.words_in(self.t, lo, hi, &self.c.bank_words) {
            return Ok(true);
        }
        let py = self.py();
        let word = |i: usize| -> PyResult<bool> {
            let c = self.at(i);
            Ok(c == 0x5F || self.c.py_alnum(py, c)?)
        };
        let mut i = lo;
        while i + 4 <= hi {
            if self.at(i) == 0x42 {
                let tail: [u32; 3] = [self.at(i + 1), self.at(i + 2), self.at(i + 3)];
                if tail == [0x61, 0x6E, 0x6B] || tail == [0x41, 0x4E, 0x4B] {
                    let left = if i == 0 || (sliced && i == lo) { true } else { !word(i - 1)? };
                    let right = i + 4 == hi || !word(i + 4)?;
                    if left && right {
                        return Ok(true);
                    }
                }
            }
            i += 1;
        }
        Ok(false)
    }

    /// `Layout.row`: the hints of the candidate's record.
    pub(crate) fn layout_row(&self, start: usize) -> PyResult<Hints> {
        let ls = self.line(start)?;
        {
            let l = self.lay.borrow();
            if let Some(h) = l.hints {
                if l.hints_at == start as isize {
                    return Ok(h);
                }
            }
        }
        let (le, named) = {
            let l = self.lay.borrow();
            let named = l.header.as_ref().is_some_and(|h| {
                h.named && (l.cells.is_some() || h.delim.is_none())
            });
            (l.le.max(0) as usize, named)
        };
        let lo = ls.max(start.saturating_sub(ROW_BEHIND));
        let hi = le.min(start + ROW_AHEAD);
        let hints = if hi > lo {
            Hints {
                bank: self.bank_in(lo, hi, true)?,
                name: named,
                payment: self.c.words_in(self.t, lo, hi, &self.c.payment_words),
            }
        } else {
            Hints::default()
        };
        let mut l = self.lay.borrow_mut();
        l.hints_at = start as isize;
        l.hints = Some(hints);
        Ok(hints)
    }

    /// `Layout.bank_near`.
    pub(crate) fn layout_bank_near(&self, start: usize) -> PyResult<bool> {
        {
            let l = self.lay.borrow();
            if let Some(h) = l.hints {
                if l.hints_at == start as isize {
                    return Ok(h.bank);
                }
            }
        }
        let ls = self.line(start)?;
        let le = self.lay.borrow().le.max(0) as usize;
        self.bank_in(ls.max(start.saturating_sub(ROW_BEHIND)), le.min(start + ROW_AHEAD), false)
    }
}
