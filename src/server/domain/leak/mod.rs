//! The leak guard: one matcher for every place a stored value could flow back to a model or to
//! a person who should not see it. It finds each value of a workspace exactly, each line of a
//! multi-line value, and the value base64-encoded (standard and URL-safe, at all three byte
//! alignments), percent-encoded, JSON-escaped and hex-encoded, and replaces every match with
//! `***` (matches that overlap become one). `scan` finds the matches. Values shorter than [`MIN_MASKED_LEN`] bytes are not masked (as CI systems do): too
//! many ordinary words would match them.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

mod scan;
mod stream;
use scan::Scanner;
pub use stream::StreamMasker;

/// What a match becomes.
pub const MASK: &str = "***";
/// Values (and fragments) shorter than this are not masked.
pub const MIN_MASKED_LEN: usize = 6;

/// A matcher over a workspace's values. Cheap to share (`Arc` inside); build a new one when a
/// value changes.
#[derive(Clone, Default)]
pub struct LeakGuard {
    inner: Option<Arc<Matcher>>,
}

struct Matcher {
    scanner: Scanner,
    /// The key of each pattern, by pattern index.
    keys: Vec<Arc<str>>,
    /// The longest pattern, in bytes: what a stream must hold back.
    longest: usize,
}

/// Bytes after masking, with the keys whose values were found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Masked {
    pub bytes: Vec<u8>,
    pub keys: BTreeSet<String>,
}

impl LeakGuard {
    /// Whether `other` is this very guard (built once, shared): what it masked in a text, it
    /// masks the same way again.
    pub fn is(&self, other: &LeakGuard) -> bool {
        match (&self.inner, &other.inner) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// A guard over `values` (key, value).
    pub fn new<'a>(values: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> LeakGuard {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut keys: Vec<Arc<str>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in values {
            let key: Arc<str> = Arc::from(key);
            for pattern in variants(value) {
                if pattern.len() >= MIN_MASKED_LEN && seen.insert(pattern.clone()) {
                    patterns.push(pattern);
                    keys.push(key.clone());
                }
            }
        }
        if patterns.is_empty() {
            return LeakGuard::default();
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let scanner = Scanner::new(patterns);
        LeakGuard { inner: Some(Arc::new(Matcher { scanner, keys, longest })) }
    }

    /// Whether the guard has nothing to find.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// `bytes` with every match replaced by `***`.
    pub fn mask(&self, bytes: &[u8]) -> Masked {
        let Some(matcher) = &self.inner else {
            return Masked { bytes: bytes.to_vec(), keys: BTreeSet::new() };
        };
        let mut out = Masked { bytes: Vec::with_capacity(bytes.len()), keys: BTreeSet::new() };
        let found = matcher.scanner.find(bytes);
        let mut last = 0;
        for (range, group) in scan::merged(&found) {
            out.bytes.extend_from_slice(&bytes[last..range.start]);
            out.bytes.extend_from_slice(MASK.as_bytes());
            out.keys.extend(group.iter().map(|f| matcher.keys[f.pattern].to_string()));
            last = range.end;
        }
        out.bytes.extend_from_slice(&bytes[last..]);
        out
    }

    /// `text` with every match replaced by `***`, and the keys found.
    pub fn mask_str(&self, text: &str) -> (String, BTreeSet<String>) {
        let masked = self.mask(text.as_bytes());
        // Patterns are whole values (valid UTF-8 where the text is) or ASCII encodings, so a
        // match never splits a character; lossy only guards against the impossible.
        let text = String::from_utf8(masked.bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into());
        (text, masked.keys)
    }

    /// Masks every string inside a JSON value (object keys too), in place; the keys found.
    pub fn mask_json(&self, value: &mut serde_json::Value) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        if self.is_empty() {
            return found;
        }
        self.mask_json_into(value, &mut found);
        found
    }

    fn mask_json_into(&self, value: &mut serde_json::Value, found: &mut BTreeSet<String>) {
        use serde_json::Value;
        match value {
            Value::String(text) => {
                let (masked, keys) = self.mask_str(text);
                if !keys.is_empty() {
                    *text = masked;
                    found.extend(keys);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_json_into(item, found)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    self.mask_json_into(&mut item, found);
                    let (key, keys) = self.mask_str(&key);
                    found.extend(keys);
                    map.insert(key, item);
                }
            }
            _ => {}
        }
    }

    /// A masker for a stream of chunks: a value split across chunks is still found.
    pub fn stream(&self) -> StreamMasker {
        StreamMasker::new(self.clone())
    }
}

/// The forms of a value the guard looks for.
fn variants(value: &[u8]) -> Vec<Vec<u8>> {
    if value.len() < MIN_MASKED_LEN {
        return Vec::new();
    }
    let mut forms: Vec<Vec<u8>> = vec![value.to_vec()];
    if value.contains(&b'\n') {
        forms.extend(
            value
                .split(|b| *b == b'\n')
                .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
                .filter(|line| line.len() >= MIN_MASKED_LEN)
                .map(<[u8]>::to_vec),
        );
    }
    let mut out = Vec::new();
    for form in forms {
        for offset in 0..3 {
            out.push(base64_fragment(&form, offset, false));
            out.push(base64_fragment(&form, offset, true));
        }
        for upper in [true, false] {
            out.push(percent_encoded(&form, upper, b"-._~"));
            // Encoders that escape everything but letters and digits.
            out.push(percent_encoded(&form, upper, b""));
        }
        if let Ok(text) = std::str::from_utf8(&form) {
            let json = serde_json::to_string(text).expect("BUG: a string serializes");
            out.push(json.as_bytes()[1..json.len() - 1].to_vec());
        }
        out.push(hex(&form, b"0123456789abcdef"));
        out.push(hex(&form, b"0123456789ABCDEF"));
        out.push(form);
    }
    out
}

/// The part of the base64 of `value`, preceded by `offset` other bytes, that depends on the
/// value's bytes alone: what appears inside any longer base64 text that contains the value.
fn base64_fragment(value: &[u8], offset: usize, url_safe: bool) -> Vec<u8> {
    let mut input = vec![0u8; offset];
    input.extend_from_slice(value);
    let encoded = if url_safe { URL_SAFE_NO_PAD.encode(&input) } else { STANDARD_NO_PAD.encode(&input) };
    let bits = input.len() * 8;
    // The first characters mix in the preceding bytes; the last one, when partial, the next.
    let start = (offset * 8).div_ceil(6);
    let end = bits / 6;
    encoded.as_bytes()[start.min(end)..end].to_vec()
}

/// `value` percent-encoded, keeping letters, digits and the bytes in `kept`.
fn percent_encoded(value: &[u8], upper: bool, kept: &[u8]) -> Vec<u8> {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || kept.contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', digits[usize::from(b >> 4)], digits[usize::from(b & 15)]]);
        }
    }
    out
}

fn hex(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    value.iter().flat_map(|b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "ghp_S3cr3t/Value+with spaces&symbols";

    fn guard() -> LeakGuard {
        LeakGuard::new([("GITHUB_TOKEN", VALUE.as_bytes()), ("SHORT", b"abc".as_slice())])
    }

    fn masked(text: &str) -> String {
        guard().mask_str(text).0
    }

    #[test]
    fn every_encoding_of_a_value_is_masked() {
        let bytes = VALUE.as_bytes();
        let encodings = [
            VALUE.to_string(),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            percent_encoded(bytes, true, b"-._~").into_iter().map(char::from).collect(),
            percent_encoded(bytes, false, b"-._~").into_iter().map(char::from).collect(),
            percent_encoded(bytes, true, b"").into_iter().map(char::from).collect(),
            hex(bytes, b"0123456789abcdef").into_iter().map(char::from).collect(),
            hex(bytes, b"0123456789ABCDEF").into_iter().map(char::from).collect(),
        ];
        for encoded in encodings {
            let shown = masked(&format!("before {encoded} after"));
            assert!(!shown.contains(&encoded), "{encoded} survived: {shown}");
            assert!(shown.starts_with("before ") && shown.ends_with(" after") && shown.contains(MASK), "{shown}");
        }
    }

    #[test]
    fn base64_is_found_at_every_alignment_inside_longer_text() {
        for prefix in ["", "a", "ab", "abc"] {
            for url_safe in [false, true] {
                let whole = format!("{prefix}{VALUE}!");
                let encoded = if url_safe {
                    URL_SAFE_NO_PAD.encode(whole.as_bytes())
                } else {
                    STANDARD_NO_PAD.encode(whole.as_bytes())
                };
                let (shown, keys) = guard().mask_str(&encoded);
                assert!(shown.contains(MASK), "prefix {prefix:?}, url-safe {url_safe}: {encoded}");
                assert!(keys.contains("GITHUB_TOKEN"));
            }
        }
    }

    #[test]
    fn json_escaped_and_lines_of_multi_line_values_are_masked() {
        let pem =
            "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END KEY-----";
        let guard = LeakGuard::new([("PEM", pem.as_bytes()), ("QUOTED", "say \"hi\" there".as_bytes())]);
        let json = serde_json::to_string(&serde_json::json!({"a": pem})).unwrap();
        let (shown, _) = guard.mask_str(&json);
        assert!(!shown.contains("MIIBOgIBAAJBAKj34Gkx"), "{shown}");
        let (line_only, keys) =
            guard.mask_str("log: MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu done");
        assert_eq!(line_only, "log: *** done");
        assert!(keys.contains("PEM"));
        assert_eq!(guard.mask_str(r#"{"q":"say \"hi\" there"}"#).0, r#"{"q":"***"}"#);
    }

    #[test]
    fn short_values_are_not_masked_and_other_text_is_untouched() {
        assert_eq!(masked("abc abcdef"), "abc abcdef");
        assert_eq!(LeakGuard::new([]).mask_str("anything").0, "anything");
    }

    #[test]
    fn a_value_split_across_chunks_is_masked() {
        let text = format!("head {VALUE} middle {} tail", STANDARD_NO_PAD.encode(VALUE.as_bytes()));
        for size in [1, 2, 3, 5, 7, 16, 64] {
            let mut stream = guard().stream();
            let mut out = Vec::new();
            for chunk in text.as_bytes().chunks(size) {
                out.extend(stream.push(chunk));
            }
            let end = stream.finish();
            out.extend(end.bytes);
            assert_eq!(String::from_utf8(out).unwrap(), masked(&text), "chunks of {size}");
            assert!(end.keys.contains("GITHUB_TOKEN"));
        }
    }

    #[test]
    fn streams_cut_anywhere_give_what_masking_the_whole_gives() {
        let values =
            [("A", "first-secret-value-0001"), ("B", "short1"), ("C", "a much longer third value, with spaces")];
        let guard = LeakGuard::new(values.iter().map(|(k, v)| (*k, v.as_bytes())));
        let mut text = String::new();
        for round in 0..40 {
            let (_, value) = values[round % 3];
            let encoded = STANDARD_NO_PAD.encode(value.as_bytes());
            text.push_str(&format!("line {round}: {value} then {encoded} and {}\n", "x".repeat(round)));
        }
        let whole = guard.mask(text.as_bytes());
        let mut seed = 7u64;
        for _ in 0..50 {
            let mut stream = guard.stream();
            let (mut out, mut rest) = (Vec::new(), text.as_bytes());
            while !rest.is_empty() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let (chunk, tail) = rest.split_at(((seed >> 33) as usize % 90 + 1).min(rest.len()));
                stream.push_into(chunk, &mut out);
                rest = tail;
            }
            let end = stream.finish();
            out.extend(end.bytes);
            assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(whole.bytes.clone()).unwrap());
            assert_eq!(end.keys, whole.keys);
        }
    }

    #[test]
    fn line_by_line_output_comes_out_at_each_newline() {
        let mut stream = guard().stream();
        assert_eq!(stream.push_lines(b"ready\n"), b"ready\n", "a short line is not held back");
        assert_eq!(stream.push_lines(format!("token {VALUE}\npart").as_bytes()), b"token ***\n");
        assert_eq!(stream.push_lines(b"ial\n"), b"partial\n");
        assert!(stream.finish().keys.contains("GITHUB_TOKEN"));
    }

    #[test]
    fn json_values_and_keys_are_masked_in_place() {
        let mut value = serde_json::json!({"body": VALUE, "list": [1, VALUE], VALUE: true});
        let keys = guard().mask_json(&mut value);
        assert_eq!(value, serde_json::json!({"body": "***", "list": [1, "***"], "***": true}));
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["GITHUB_TOKEN"]);
    }
}
