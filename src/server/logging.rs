//! Log lines pass the leak guard too: the process's log writer masks every stored value (of
//! every workspace, in all the forms the guard knows) before a line is written. The guard it
//! uses is replaced by [`set_guard`] whenever the stored values change (the server checks
//! every few seconds).

use std::io::Write;
use std::sync::{OnceLock, RwLock};

use tracing_subscriber::fmt::MakeWriter;

use crate::server::domain::leak::LeakGuard;

fn current() -> &'static RwLock<LeakGuard> {
    static GUARD: OnceLock<RwLock<LeakGuard>> = OnceLock::new();
    GUARD.get_or_init(|| RwLock::new(LeakGuard::default()))
}

/// Replaces the guard log lines pass through.
pub fn set_guard(guard: LeakGuard) {
    *current().write().expect("BUG: the log guard lock is never poisoned") = guard;
}

/// A `MakeWriter` for `tracing_subscriber::fmt` that masks each formatted event before
/// handing it to `inner` (e.g. `std::io::stderr`).
#[derive(Clone, Copy)]
pub struct Masked<M> {
    inner: M,
}

impl<M> Masked<M> {
    /// Masks what goes to `inner`.
    pub fn new(inner: M) -> Masked<M> {
        Masked { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Masked<M> {
    type Writer = MaskedLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedLine { buffer: Vec::new(), inner: self.inner.make_writer() }
    }
}

/// One event's text, written (masked) when dropped.
pub struct MaskedLine<W: Write> {
    buffer: Vec<u8>,
    inner: W,
}

impl<W: Write> Write for MaskedLine<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for MaskedLine<W> {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let masked = current().read().expect("BUG: the log guard lock is never poisoned").mask(&self.buffer);
        let _ = self.inner.write_all(&masked.bytes);
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stored_value_in_a_log_line_is_masked() {
        let value = "sk-live-log-canary-0042";
        set_guard(LeakGuard::new([("API_KEY", value.as_bytes())]));
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber =
            tracing_subscriber::fmt().with_writer(Masked::new(move || sink.clone())).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(header = %format!("Bearer {value}"), "calling upstream with {value}");
        });
        let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("calling upstream with ***"), "{logged}");
        assert!(logged.contains("Bearer ***") && !logged.contains(value), "{logged}");
        set_guard(LeakGuard::default());
    }
}
