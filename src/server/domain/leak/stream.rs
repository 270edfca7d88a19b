//! The leak guard over a stream: chunks are masked as they come, and a value split across
//! chunks is still found.

use std::collections::BTreeSet;

use super::{scan, LeakGuard, Masked, MASK};

/// Masks a stream chunk by chunk. It holds back at most the longest pattern less one byte, so
/// a match can only be cut where it could still be completed by the next chunk.
pub struct StreamMasker {
    guard: LeakGuard,
    held: Vec<u8>,
    keys: BTreeSet<String>,
    /// Buffers kept from one chunk to the next, so a stream allocates once.
    spare: Vec<u8>,
    found: Vec<scan::Found>,
}

impl StreamMasker {
    pub(super) fn new(guard: LeakGuard) -> StreamMasker {
        StreamMasker { guard, held: Vec::new(), keys: BTreeSet::new(), spare: Vec::new(), found: Vec::new() }
    }

    /// Takes the next chunk; returns what can be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + self.held.len());
        self.push_into(chunk, &mut out);
        out
    }

    /// [`StreamMasker::push`], appending to `out`. The chunk is scanned where it lies: only the
    /// junction (the bytes held back and the start of the chunk, where a match may straddle
    /// the two) is copied, so a stream costs about what masking it whole does.
    pub fn push_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(matcher) = self.guard.inner.clone() else {
            out.extend_from_slice(chunk);
            return;
        };
        let keep = matcher.longest - 1;
        let held = self.held.len();
        // Positions below are in `held ++ chunk`. A match that starts in `held` ends before
        // `held + keep`, inside the junction; any other lies inside the chunk.
        let mut junction = std::mem::take(&mut self.held);
        junction.extend_from_slice(&chunk[..chunk.len().min(keep)]);
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        matcher.scanner.find_into(&junction, &mut found);
        let from = found.len();
        matcher.scanner.find_into(chunk, &mut found);
        for f in &mut found[from..] {
            f.start += held;
            f.end += held;
        }
        scan::sort(&mut found);
        let both = Joined { held: &junction[..held], chunk };
        // Anything that starts at or after `cut` might be the start of a match that the next
        // chunk completes; anything before it is decided.
        let mut cut = (held + chunk.len()).saturating_sub(keep);
        let mut last = 0;
        for (range, group) in scan::merged(&found) {
            if range.start >= cut {
                break;
            }
            both.copy(last..range.start, out);
            out.extend_from_slice(MASK.as_bytes());
            self.keys.extend(group.iter().map(|f| matcher.keys[f.pattern].to_string()));
            last = range.end;
            cut = cut.max(last);
        }
        both.copy(last..cut, out);
        let mut rest = std::mem::take(&mut self.spare);
        rest.clear();
        both.copy(cut..held + chunk.len(), &mut rest);
        self.held = rest;
        self.spare = junction;
        self.found = found;
    }

    /// Like [`StreamMasker::push`], but everything up to the chunk's last newline is decided
    /// at once, so line-buffered output stays line-buffered. A value that spans lines is still
    /// found by its lines.
    pub fn push_lines(&mut self, chunk: &[u8]) -> Vec<u8> {
        let Some(end) = chunk.iter().rposition(|b| *b == b'\n') else { return self.push(chunk) };
        self.held.extend_from_slice(&chunk[..=end]);
        let lines = std::mem::take(&mut self.held);
        let masked = self.guard.mask(&lines);
        self.keys.extend(masked.keys);
        let mut out = masked.bytes;
        out.extend(self.push(&chunk[end + 1..]));
        out
    }

    /// Ends the stream: the bytes held back, masked, and every key found.
    pub fn finish(mut self) -> Masked {
        let masked = self.guard.mask(&self.held);
        self.keys.extend(masked.keys);
        Masked { bytes: masked.bytes, keys: self.keys }
    }
}

/// The bytes held back followed by a new chunk, without copying them into one buffer.
struct Joined<'a> {
    held: &'a [u8],
    chunk: &'a [u8],
}

impl Joined<'_> {
    /// Appends the bytes at `range` (positions in `held ++ chunk`) to `out`.
    fn copy(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        let split = self.held.len();
        if range.start < split {
            out.extend_from_slice(&self.held[range.start..range.end.min(split)]);
        }
        if range.end > split {
            out.extend_from_slice(&self.chunk[range.start.max(split) - split..range.end - split]);
        }
    }
}
