//! The context words of `guard.scan.detectors.context`, searched backwards from a candidate.
//!
//! `context._LABEL_REV` is a trie of the reversed words (and their case variants), a space in a
//! word optional and written as `[ _]?`, searched in the reversed window before the candidate.
//! This is the same trie walked straight over the text, backwards, with the regex engine's
//! backtracking order (children in code-point order, a space's `[ _]` taken before skipped, a
//! longer continuation before the word that ends here), so its first match is the regex's; and
//! each word's kind is looked up once, when the trie is built, not per match.

use std::collections::HashMap;

use crate::{Unit, K};

struct Node {
    /// (character, child), in code-point order; a ' ' child stands for an optional ' ' or '_'.
    kids: Vec<(u32, usize)>,
    /// The kind of the word ending here (`context._kind_of` of it), when a word ends here.
    end: Option<Option<K>>,
}

pub(crate) struct Trie {
    nodes: Vec<Node>,
    ascii_first: [bool; 128],
    other_first: Vec<u32>,
    any_first: bool,
}

/// `context._key`: lower case, spaces and underscores left out.
fn key(word: &str) -> String {
    word.chars().filter(|&c| c != ' ' && c != '_').flat_map(|c| c.to_lowercase()).collect()
}

impl Trie {
    /// The trie of `reversed` (each word and variant, reversed), with the kinds of `kinds`.
    pub(crate) fn new(reversed: &[String], kinds: &HashMap<String, K>) -> Trie {
        let mut nodes = vec![Node { kids: Vec::new(), end: None }];
        for rev in reversed {
            let mut at = 0;
            for c in rev.chars() {
                let c = c as u32;
                at = match nodes[at].kids.iter().find(|(k, _)| *k == c) {
                    Some(&(_, next)) => next,
                    None => {
                        nodes.push(Node { kids: Vec::new(), end: None });
                        let next = nodes.len() - 1;
                        nodes[at].kids.push((c, next));
                        next
                    }
                };
            }
            let word: String = rev.chars().rev().collect();
            nodes[at].end = Some(kinds.get(&key(&word)).copied());
        }
        for node in &mut nodes {
            node.kids.sort_unstable();
        }
        let mut ascii_first = [false; 128];
        let mut other_first = Vec::new();
        let mut any_first = false;
        for &(c, _) in &nodes[0].kids {
            if c == 0x20 {
                any_first = true;
            } else if c < 128 {
                ascii_first[c as usize] = true;
            } else {
                other_first.push(c);
            }
        }
        other_first.sort_unstable();
        Trie { nodes, ascii_first, other_first, any_first }
    }

    #[inline]
    fn may_start(&self, c: u32) -> bool {
        self.any_first
            || if c < 128 { self.ascii_first[c as usize] } else { self.other_first.binary_search(&c).is_ok() }
    }

    /// The match reading backwards from text[q] (q + 1 characters at most, down to `lo`): the
    /// index its word starts at and the word's kind.
    fn walk<U: Unit>(&self, t: &[U], node: usize, q: isize, lo: isize) -> Option<(isize, Option<K>)> {
        let n = &self.nodes[node];
        for &(c, next) in &n.kids {
            if c == 0x20 {
                if q >= lo && matches!(t[q as usize].cp(), 0x20 | 0x5F) {
                    if let Some(m) = self.walk(t, next, q - 1, lo) {
                        return Some(m);
                    }
                }
                if let Some(m) = self.walk(t, next, q, lo) {
                    return Some(m);
                }
            } else if q >= lo && t[q as usize].cp() == c {
                if let Some(m) = self.walk(t, next, q - 1, lo) {
                    return Some(m);
                }
            }
        }
        n.end.map(|kind| (q + 1, kind))
    }

    /// `_LABEL_REV.search(rev, pos)` of the reversed window text[lo:start], from `skip` characters
    /// before `start`: (w_start, w_end, the word's kind) of the first match.
    pub(crate) fn search<U: Unit>(
        &self, t: &[U], lo: usize, start: usize, skip: usize,
    ) -> Option<(usize, usize, Option<K>)> {
        let mut i = skip;
        while i < start - lo {
            let q = start - 1 - i;
            if self.may_start(t[q].cp()) {
                if let Some((w_start, kind)) = self.walk(t, 0, q as isize, lo as isize) {
                    return Some((w_start as usize, start - i, kind));
                }
            }
            i += 1;
        }
        None
    }
}
