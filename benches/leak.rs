//! The leak guard against the plain copy of the same bytes, in one process: a 1 MiB body
//! (JSON-like text holding a few stored values, some base64-encoded) masked against 1,000
//! stored values, whole and in 16 KiB chunks, beside copying the same bytes into a new buffer
//! chunk by chunk. `cargo bench --features ssr --bench leak`; BENCHMARKS.md has the figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use loopstack_secrets::server::domain::leak::LeakGuard;
use rand::{Rng, RngCore};

const VALUES: usize = 1_000;
const BODY_BYTES: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;

fn main() {
    println!("# leak guard: 1 MiB against {VALUES} stored values\n");
    println!("| stored values | measurement | time per MiB | MiB/s | ÷ copy |");
    println!("|---|---|---|---|---|");
    // Typical API keys and tokens, then the worst case the guard accepts: values down to the
    // shortest it masks, which shortens the stride of its scan.
    scenario("20–64 chars", 20..64);
    scenario("6–64 chars", 6..64);
}

fn scenario(label: &str, lengths: std::ops::Range<usize>) {
    let mut rng = rand::thread_rng();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let values: Vec<(String, String)> = (0..VALUES)
        .map(|i| {
            let len = rng.gen_range(lengths.clone());
            let value: String = (0..len).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect();
            (format!("KEY_{i}"), value)
        })
        .collect();
    let started = Instant::now();
    let guard = LeakGuard::new(values.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    let build = started.elapsed();

    let mut body = Vec::with_capacity(BODY_BYTES + 1024);
    let mut filler = [0u8; 48];
    let mut planted = std::collections::BTreeSet::new();
    while body.len() < BODY_BYTES {
        rng.fill_bytes(&mut filler);
        let word = base64::engine::general_purpose::STANDARD.encode(filler);
        body.extend_from_slice(format!("{{\"id\": {}, \"text\": \"{word}\"}},\n", body.len()).as_bytes());
        if rng.gen_ratio(1, 2000) {
            let (key, value) = &values[rng.gen_range(0..VALUES)];
            body.extend_from_slice(value.as_bytes());
            body.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(value).as_bytes());
            planted.insert(key.clone());
        }
    }
    body.truncate(BODY_BYTES);

    let copy = measure(|| {
        let mut out = Vec::with_capacity(body.len());
        for chunk in body.chunks(CHUNK) {
            out.extend_from_slice(black_box(chunk));
        }
        out.len()
    });
    let whole = measure(|| guard.mask(black_box(&body)).bytes.len());
    let streamed = measure(|| {
        let mut stream = guard.stream();
        let mut out = Vec::with_capacity(body.len());
        for chunk in body.chunks(CHUNK) {
            stream.push_into(black_box(chunk), &mut out);
        }
        out.extend(stream.finish().bytes);
        out.len()
    });
    let found = guard.mask(&body).keys;
    assert!(planted.iter().all(|key| found.contains(key)), "a planted value was not found");

    for (name, time) in [
        ("copy, 16 KiB chunks (baseline)", copy),
        ("mask, whole body", whole),
        ("mask, streamed in 16 KiB chunks", streamed),
    ] {
        let mib_s = 1.0 / time.as_secs_f64();
        println!(
            "| {label} | {name} | {:.1} µs | {mib_s:.0} | **{:.2}** |",
            time.as_secs_f64() * 1e6,
            time.as_secs_f64() / copy.as_secs_f64()
        );
    }
    println!(
        "| {label} | building the guard | {:.1} ms | | {} of the values found in the body |",
        build.as_secs_f64() * 1e3,
        found.len()
    );
}

/// The best of many runs of `f` (noise only ever adds time).
fn measure(mut f: impl FnMut() -> usize) -> Duration {
    let mut best = Duration::MAX;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let started = Instant::now();
        black_box(f());
        best = best.min(started.elapsed());
    }
    best
}
