//! Requests that stay open (event streams, long-polls): how many one credential may hold at
//! once, and the periodic re-check of the credential while they run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::server::error::AppError;

/// Seconds a caller over the cap is told to wait.
const RETRY_SECS: u64 = 5;

/// Counts the open streams of each credential (token or session) on this instance.
#[derive(Clone)]
pub struct StreamLimits {
    max: usize,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// One open stream; the count goes down when it is dropped.
pub struct StreamSlot {
    credential: Uuid,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl StreamLimits {
    /// At most `max` open streams per credential.
    pub fn new(max: usize) -> StreamLimits {
        StreamLimits { max: max.max(1), open: Arc::default() }
    }

    /// A slot for one more stream of `credential`, or 429 when it holds `max` already.
    pub fn open(&self, credential: Uuid) -> Result<StreamSlot, AppError> {
        let mut open = self.open.lock().expect("BUG: the stream count lock is never poisoned");
        let count = open.entry(credential).or_default();
        if *count >= self.max {
            return Err(AppError::TooManyRequests(RETRY_SECS));
        }
        *count += 1;
        Ok(StreamSlot { credential, open: self.open.clone() })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("BUG: the stream count lock is never poisoned");
        if let Some(count) = open.get_mut(&self.credential) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.credential);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_holds_at_most_the_cap_and_gets_slots_back() {
        let limits = StreamLimits::new(2);
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let a = limits.open(me).unwrap();
        let _b = limits.open(me).unwrap();
        assert!(matches!(limits.open(me), Err(AppError::TooManyRequests(_))));
        assert!(limits.open(other).is_ok(), "the cap is per credential");
        drop(a);
        assert!(limits.open(me).is_ok());
    }
}
