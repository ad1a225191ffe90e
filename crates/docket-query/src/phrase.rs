//! Phrase matching in time linear in the phrase plus the document, for the stores' long
//! phrases. FTS5 (and PostgreSQL's substring check) compare each phrase word against the
//! document's positions on its own, so a phrase of k common words costs k × positions: a
//! 256-word phrase of "disk full" over a ticket of 200k such words took seconds. Here the
//! phrase is a Knuth–Morris–Pratt pattern over word ids: every document word is looked up
//! once and the match state moves at most twice per word.

use std::collections::HashMap;

/// Phrases of more words than this are matched here by the stores; shorter ones are left
/// to the database's own phrase match, whose cost (words × positions) stays within a small
/// multiple of linear and which needs no document text.
pub const SHORT_PHRASE_WORDS: usize = 4;

/// A phrase prepared for matching.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// Word -> id (ids are dense, in order of first appearance).
    ids: HashMap<Vec<u8>, u32>,
    pattern: Vec<u32>,
    /// fail[i]: length of the longest proper border of pattern[..=i].
    fail: Vec<usize>,
}

/// The result of matching one document, with the work it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Found {
    pub matched: bool,
    /// Document words read plus match-state moves: at most 3 × document words.
    pub steps: u64,
}

impl Phrase {
    /// None for an empty phrase.
    pub fn new<'a>(words: impl IntoIterator<Item = &'a [u8]>) -> Option<Phrase> {
        let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut pattern = Vec::new();
        for w in words {
            let next = ids.len() as u32;
            pattern.push(*ids.entry(w.to_vec()).or_insert(next));
        }
        if pattern.is_empty() {
            return None;
        }
        let mut fail = vec![0usize; pattern.len()];
        let mut k = 0;
        for i in 1..pattern.len() {
            while k > 0 && pattern[i] != pattern[k] {
                k = fail[k - 1];
            }
            if pattern[i] == pattern[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Some(Phrase { ids, pattern, fail })
    }

    /// The distinct words of the phrase (for a cheap candidate filter: a document lacking
    /// one cannot match).
    pub fn distinct_words(&self) -> impl Iterator<Item = &[u8]> {
        let mut words: Vec<(&Vec<u8>, &u32)> = self.ids.iter().collect();
        words.sort_by_key(|(_, id)| **id);
        words.into_iter().map(|(w, _)| w.as_slice())
    }

    /// Whether the document's words contain the phrase as a consecutive run.
    pub fn find<W: AsRef<[u8]>>(&self, words: impl IntoIterator<Item = W>) -> Found {
        const OTHER: u32 = u32::MAX;
        let mut found = Found::default();
        let mut k = 0;
        for w in words {
            found.steps += 1;
            let id = self.ids.get(w.as_ref()).copied().unwrap_or(OTHER);
            // Each move down the failure chain undoes one earlier move up: amortized O(1).
            while k > 0 && self.pattern[k] != id {
                k = self.fail[k - 1];
                found.steps += 1;
            }
            if self.pattern[k] == id {
                k += 1;
                found.steps += 1;
                if k == self.pattern.len() {
                    found.matched = true;
                    return found;
                }
            }
        }
        found
    }
}

/// The words of a text as SQLite FTS5's `ascii` tokenizer (with `tokenchars '_'`) splits
/// them: runs of ASCII letters, digits, `_` and any non-ASCII byte, ASCII letters folded.
pub fn fts5_ascii_words(text: &str) -> impl Iterator<Item = std::borrow::Cow<'_, [u8]>> {
    let is_token = |b: u8| b >= 0x80 || b.is_ascii_alphanumeric() || b == b'_';
    text.as_bytes()
        .split(move |b| !is_token(*b))
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.iter().any(u8::is_ascii_uppercase) {
                std::borrow::Cow::Owned(w.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(w)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(s: &str) -> Phrase {
        Phrase::new(s.split(' ').map(str::as_bytes)).unwrap()
    }

    fn find(p: &Phrase, doc: &str) -> Found {
        p.find(doc.split(' ').map(str::as_bytes))
    }

    #[test]
    fn matches_like_sliding_windows() {
        let mut seed = 7u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let words = |n: u64, next: &mut dyn FnMut() -> u64| -> Vec<&str> {
                (0..n)
                    .map(|_| ["a", "b", "c"][(next() % 3) as usize])
                    .collect()
            };
            let n = 1 + next() % 5;
            let needle = words(n, &mut next);
            let m = next() % 30;
            let hay = words(m, &mut next);
            let expected = hay.windows(needle.len()).any(|w| w == needle.as_slice());
            let p = phrase(&needle.join(" "));
            assert_eq!(
                find(&p, &hay.join(" ")).matched,
                expected,
                "{hay:?} {needle:?}"
            );
        }
        assert!(find(&phrase("a a a b"), "a a b a a a b").matched);
        assert!(!find(&phrase("a b c"), "a b").matched);
        assert!(find(&phrase("disk full"), "the disk full").matched);
        assert!(Phrase::new(std::iter::empty()).is_none());
    }

    #[test]
    fn work_is_linear_in_phrase_plus_document() {
        // The worst case of per-word position walks: 256 words of "disk full … disk disk"
        // against 200k words of "disk full". Walks cost 256 × 200k; this at most 3 × 200k.
        let mut words = ["disk", "full"].repeat(127);
        words.extend(["disk", "disk"]);
        let p = Phrase::new(words.iter().map(|w| w.as_bytes())).unwrap();
        let doc = "disk full ".repeat(100_000);
        let found = p.find(doc.split_whitespace().map(str::as_bytes));
        assert!(!found.matched);
        assert!(found.steps <= 3 * 200_000, "{} steps", found.steps);
        assert_eq!(
            p.distinct_words().collect::<Vec<_>>(),
            vec![b"disk".as_slice(), b"full"]
        );
    }

    #[test]
    fn splits_like_the_fts5_ascii_tokenizer() {
        let words: Vec<_> = fts5_ascii_words("  Disk_1 full, é-x  ").collect();
        assert_eq!(
            words.iter().map(|w| w.as_ref()).collect::<Vec<_>>(),
            vec![b"disk_1".as_slice(), b"full", "é".as_bytes(), b"x"]
        );
    }
}
