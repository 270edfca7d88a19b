//! Finding every occurrence of many patterns at close to memory speed: a sampled q-gram filter.
//!
//! Every pattern of a tier is at least `shortest` bytes long. Reading a `Q`-byte window at every
//! `stride`-th position of the text, with `stride = shortest - Q + 1`, puts at least one whole
//! window inside every occurrence, starting less than `stride` bytes after the occurrence does.
//! So a tier keeps, for each of its patterns, the windows at offsets `0..stride`: a text window
//! found among them names the patterns (and offsets) to compare byte for byte. A Bloom filter
//! small enough for the cache answers "surely not" for almost every window, so the text is
//! read once, a window every few bytes, and the exact table is consulted only on a hit. (The
//! filter holds at most 2^24 words, 128 MiB: far past any workspace's values.) The cost is
//! one filter lookup per `stride` bytes, so it falls as the shortest pattern grows.
//!
//! Patterns shorter than 16 bytes go to a second tier with 4-byte windows, so one short value
//! does not shorten the stride for all the others.

use std::ops::Range;

use rustc_hash::FxHashMap;

/// Patterns at least this long use 8-byte windows; shorter ones, 4-byte windows.
const LONG: usize = 16;
/// More offsets per pattern would only grow the table: the stride stops here.
const MAX_STRIDE: usize = 32;

/// One occurrence of a pattern in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Found {
    pub start: usize,
    pub end: usize,
    pub pattern: usize,
}

/// Finds every occurrence of every pattern (overlapping ones too).
pub(super) struct Scanner {
    patterns: Vec<Vec<u8>>,
    long: Option<Tier<8>>,
    short: Option<Tier<4>>,
}

impl Scanner {
    /// A scanner over `patterns`, each at least 4 bytes long.
    pub fn new(patterns: Vec<Vec<u8>>) -> Scanner {
        assert!(patterns.iter().all(|p| p.len() >= 4), "BUG: a pattern shorter than a window");
        let (long, short): (Vec<usize>, Vec<usize>) = (0..patterns.len()).partition(|&i| patterns[i].len() >= LONG);
        Scanner { long: Tier::new(&patterns, &long), short: Tier::new(&patterns, &short), patterns }
    }

    /// Every occurrence in `text`, ordered by start (the longest first at one start).
    pub fn find(&self, text: &[u8]) -> Vec<Found> {
        let mut found = Vec::new();
        self.find_into(text, &mut found);
        sort(&mut found);
        found
    }

    /// Appends every occurrence in `text` to `found`, in no particular order.
    pub fn find_into(&self, text: &[u8], found: &mut Vec<Found>) {
        if let Some(tier) = &self.long {
            tier.scan(text, &self.patterns, found);
        }
        if let Some(tier) = &self.short {
            tier.scan(text, &self.patterns, found);
        }
    }
}

/// Orders occurrences by start, the longest first at one start, and drops repeats.
pub(super) fn sort(found: &mut Vec<Found>) {
    found.sort_unstable_by_key(|f| (f.start, std::cmp::Reverse(f.end), f.pattern));
    found.dedup();
}

/// Occurrences that overlap, merged: each range with the occurrences inside it.
pub(super) fn merged(found: &[Found]) -> impl Iterator<Item = (Range<usize>, &[Found])> {
    let mut rest = found;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut end = first.end;
        let taken = rest.iter().take_while(|f| {
            f.start < end && {
                end = end.max(f.end);
                true
            }
        });
        let count = taken.count();
        let (group, tail) = rest.split_at(count);
        rest = tail;
        Some((first.start..end, group))
    })
}

/// The patterns read through `Q`-byte windows.
struct Tier<const Q: usize> {
    stride: usize,
    /// Bloom filter words; the top bits of a window's hash, past `shift`, select one.
    bloom: Vec<u64>,
    shift: u32,
    /// Each stored window: where its (pattern, offset) entries sit in `entries`.
    table: FxHashMap<u64, Range<u32>>,
    entries: Vec<(u32, u8)>,
}

impl<const Q: usize> Tier<Q> {
    /// Bloom filter bits per stored window (two set in one word: the scan checks one, a hit
    /// the other). Long patterns have many windows and a long stride, so the filter must stay
    /// small enough for the cache; short ones have few windows and a short stride, so false
    /// hits would dominate. (Measured with `benches/leak.rs`: checking both bits on the scan's
    /// path cost more to compute than the false hits it saved, and batching lookups did not
    /// help.)
    const BITS_PER_WINDOW: usize = if Q == 8 { 16 } else { 32 };

    fn new(patterns: &[Vec<u8>], members: &[usize]) -> Option<Tier<Q>> {
        let shortest = members.iter().map(|&i| patterns[i].len()).min()?;
        let stride = (shortest - Q + 1).min(MAX_STRIDE);
        let mut windows: Vec<(u64, u32, u8)> = Vec::with_capacity(members.len() * stride);
        for &i in members {
            for offset in 0..stride {
                let index = u32::try_from(i).expect("BUG: fewer than 2^32 patterns");
                windows.push((window::<Q>(&patterns[i][offset..]), index, offset as u8));
            }
        }
        windows.sort_unstable();
        windows.dedup();
        let words = (windows.len() * Self::BITS_PER_WINDOW / 64).next_power_of_two().clamp(2, 1 << 24);
        let mut tier = Tier {
            stride,
            bloom: vec![0; words],
            shift: 64 - words.trailing_zeros(),
            table: FxHashMap::default(),
            entries: windows.iter().map(|&(_, pattern, offset)| (pattern, offset)).collect(),
        };
        let mut from = 0;
        for (at, &(gram, ..)) in windows.iter().enumerate() {
            let (word, bit) = tier.slot(gram);
            tier.bloom[word] |= bit | tier.second_bit(gram);
            if windows.get(at + 1).is_none_or(|next| next.0 != gram) {
                tier.table.insert(gram, from as u32..at as u32 + 1);
                from = at + 1;
            }
        }
        Some(tier)
    }

    /// The Bloom filter word and the bit a window sets in it: multiplicative hashing, whose
    /// top bits depend on every bit of the window (the word from the topmost, the bit from
    /// the six below them).
    #[inline(always)]
    fn slot(&self, gram: u64) -> (usize, u64) {
        let h = gram.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> self.shift) as usize, 1 << ((h >> (self.shift - 6)) & 63))
    }

    /// A second bit in the same word, from the next six bits of the hash: checked only after
    /// the first one matched, so it costs nothing on the scan's path and saves most table
    /// lookups of false hits.
    fn second_bit(&self, gram: u64) -> u64 {
        let h = gram.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        1 << ((h >> (self.shift - 12)) & 63)
    }

    fn scan(&self, text: &[u8], patterns: &[Vec<u8>], found: &mut Vec<Found>) {
        let Some(last) = text.len().checked_sub(Q) else { return };
        let mut at = 0;
        while at <= last {
            let gram = window::<Q>(&text[at..]);
            let (word, bits) = self.slot(gram);
            if self.bloom[word] & bits == bits {
                self.confirm(text, at, gram, patterns, found);
            }
            at += self.stride;
        }
    }

    /// Compares the patterns whose window at some offset equals the text's window at `at`.
    #[cold]
    fn confirm(&self, text: &[u8], at: usize, gram: u64, patterns: &[Vec<u8>], found: &mut Vec<Found>) {
        let (word, _) = self.slot(gram);
        let second = self.second_bit(gram);
        if self.bloom[word] & second == 0 {
            return;
        }
        let Some(range) = self.table.get(&gram) else { return };
        for &(pattern, offset) in &self.entries[range.start as usize..range.end as usize] {
            let Some(start) = at.checked_sub(usize::from(offset)) else { continue };
            let bytes = &patterns[pattern as usize];
            if text[start..].starts_with(bytes) {
                found.push(Found { start, end: start + bytes.len(), pattern: pattern as usize });
            }
        }
    }
}

/// The `Q` bytes at the start of `bytes`, as a number.
#[inline(always)]
fn window<const Q: usize>(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..Q].copy_from_slice(&bytes[..Q]);
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence, the slow and obvious way.
    fn naive(patterns: &[Vec<u8>], text: &[u8]) -> Vec<Found> {
        let mut found = Vec::new();
        for (pattern, bytes) in patterns.iter().enumerate() {
            for start in 0..text.len() {
                if text[start..].starts_with(bytes) {
                    found.push(Found { start, end: start + bytes.len(), pattern });
                }
            }
        }
        found.sort_unstable_by_key(|f| (f.start, std::cmp::Reverse(f.end), f.pattern));
        found
    }

    #[test]
    fn finds_what_the_naive_search_finds_at_every_position() {
        let patterns: Vec<Vec<u8>> = ["abcdef", "bcdefgh", "zzzzzz", "0123456789abcdefXYZ", "fXYZ0123456789abcdefXYZ!"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let scanner = Scanner::new(patterns.clone());
        for pad in 0..40 {
            let text = format!(
                "{}abcdefgh zzzzzzzz 0123456789abcdefXYZ0123456789abcdefXYZ!{}",
                "-".repeat(pad),
                ".".repeat(pad % 7)
            );
            assert_eq!(scanner.find(text.as_bytes()), naive(&patterns, text.as_bytes()), "padding {pad}");
        }
    }

    #[test]
    fn finds_what_the_naive_search_finds_in_random_texts() {
        // A small alphabet, so patterns overlap and share windows often.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for round in 0..200 {
            let mut random = |len: usize| (0..len).map(|_| b"abc"[next(3)]).collect::<Vec<u8>>();
            let patterns: Vec<Vec<u8>> = (0..1 + round % 9).map(|i| random(4 + (i * 5 + round) % 30)).collect();
            let text = random(round * 3);
            assert_eq!(Scanner::new(patterns.clone()).find(&text), naive(&patterns, &text), "round {round}");
        }
    }

    #[test]
    fn texts_shorter_than_a_window_and_empty_scanners_find_nothing() {
        assert!(Scanner::new(vec![b"abcdefgh".to_vec()]).find(b"abc").is_empty());
        assert!(Scanner::new(Vec::new()).find(b"abcdefgh").is_empty());
    }

    #[test]
    fn overlapping_occurrences_merge_into_one_range() {
        let found = [
            Found { start: 0, end: 6, pattern: 0 },
            Found { start: 4, end: 10, pattern: 1 },
            Found { start: 10, end: 16, pattern: 0 },
        ];
        let ranges: Vec<_> = merged(&found).map(|(range, group)| (range, group.len())).collect();
        assert_eq!(ranges, [(0..10, 2), (10..16, 1)]);
    }
}
