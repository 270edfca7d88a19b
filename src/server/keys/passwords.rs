//! Credential primitives: random secrets and their stored hashes, constant-time comparison, and
//! password hashing (argon2id) off the async workers. Argon2 is deliberately slow; run on the
//! threads that serve requests, a flood of sign-ins would stall every other route. Hashes run
//! on threads of their own, one per permit of a semaphore sized to the cores, at a lower
//! scheduling priority than the request threads (on Linux), so they take only the CPU requests
//! leave; a caller that finds every permit taken is told to retry (429) at once instead of
//! queueing.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

use crate::server::error::AppError;

/// Seconds a caller turned away for lack of a hashing permit is told to wait.
const BUSY_RETRY_SECS: u64 = 1;

/// How much lower the hashing threads' priority is than the process's, as a nice value (19 is
/// the lowest: Linux's scheduler gives such a thread about 1/70 of the CPU a thread at 0 gets
/// when both want it, and all of it when nothing else does). At +10 a flood still doubled the
/// list's p99 on two cores (BENCHMARKS.md).
const HASHING_NICENESS: i32 = 19;

/// A hash to run.
type Job = Box<dyn FnOnce() + Send>;

/// Hands out the right to run one password hash, and runs it on its threads.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

/// The right to run one hash on one of the hasher's threads; returned when the hash is done.
pub struct HashPermit {
    permit: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
}

impl Hasher {
    /// A hasher running at most `threads` hashes at once (at least one), each on a thread of
    /// its own at a lower priority.
    pub fn new(threads: usize) -> Hasher {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        // Ends when every sender (the hasher and its permits) is gone.
                        let Ok(job) = queue.lock().unwrap_or_else(|p| p.into_inner()).recv() else { return };
                        job();
                    }
                })
                .expect("failed to start a password hashing thread");
        }
        Hasher { permits: Arc::new(Semaphore::new(threads)), jobs }
    }

    /// A hasher sized to the machine's cores.
    pub fn for_cores() -> Hasher {
        Hasher::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }

    /// Takes a permit, or answers 429 at once when every one is in use.
    pub fn reserve(&self) -> Result<HashPermit, AppError> {
        let permit =
            self.permits.clone().try_acquire_owned().map_err(|_| AppError::TooManyRequests(BUSY_RETRY_SECS))?;
        Ok(HashPermit { permit, jobs: self.jobs.clone() })
    }
}

/// Lowers the calling thread's scheduling priority by [`HASHING_NICENESS`] (Linux keeps a nice
/// value per thread). Elsewhere, or when refused, the thread keeps the process's priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (current + HASHING_NICENESS).min(19));
    }
}

impl HashPermit {
    /// Whether `password` matches `hash`; with no hash, a dummy one is checked instead so an
    /// unknown user costs as much as a wrong password.
    pub async fn verify(self, hash: Option<String>, password: Zeroizing<String>) -> Result<bool, AppError> {
        self.run(move || verify_password(hash.as_deref().unwrap_or_else(|| dummy_hash()), &password)).await
    }

    /// Hashes a new password.
    pub async fn hash(self, password: Zeroizing<String>) -> Result<String, AppError> {
        self.run(move || hash_password(&password)).await?
    }

    async fn run<T: Send + 'static>(self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let HashPermit { permit, jobs } = self;
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = job();
            // Back before the caller hears the answer.
            drop(permit);
            let _ = done.send(out);
        });
        let failed = || AppError::Internal(anyhow::anyhow!("a password hash task failed"));
        jobs.send(job).map_err(|_| failed())?;
        answer.await.map_err(|_| failed())
    }
}

/// Hashes a password with argon2id and a random salt (blocking: call from a blocking thread or
/// through [`HashPermit::hash`]).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("failed to hash a password: {e}")))
}

/// Hashes a password on a blocking thread, outside the permits: for administrators creating
/// users, which no anonymous caller can reach.
pub async fn hash_password_blocking(password: Zeroizing<String>) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("a password hash task failed: {e}")))?
}

/// Whether `password` matches the stored hash (blocking). The comparison of the derived key is
/// argon2's own, in constant time.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash to verify against when the username does not exist, so both failures cost the same.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").expect("BUG: hashing a constant cannot fail"))
}

/// Compares two secrets (token and session hashes, CSRF tokens) in time that depends only on
/// their lengths, never on where they first differ. Every credential comparison in the server
/// goes through here.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// 256 random bits, base64url: the secret part of tokens and session cookies.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// The stored form of a token or session secret.
pub fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsf"));
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"abcd"), "a prefix is not equal");
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[tokio::test]
    async fn a_full_hasher_turns_callers_away_at_once() {
        let hasher = Hasher::new(1);
        let held = hasher.reserve().unwrap();
        assert!(matches!(hasher.reserve(), Err(AppError::TooManyRequests(_))));
        drop(held);
        let permit = hasher.reserve().unwrap();
        assert!(!permit.verify(None, Zeroizing::new("guess".into())).await.unwrap());
        assert!(hasher.reserve().is_ok(), "the permit comes back when the hash is done");
    }

    /// The nice value of the calling thread.
    #[cfg(target_os = "linux")]
    fn niceness() -> i32 {
        // SAFETY: a plain system call about the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_a_lower_priority_than_the_caller() {
        let hasher = Hasher::new(2);
        let mine = niceness();
        let theirs = hasher.reserve().unwrap().run(niceness).await.unwrap();
        assert_eq!(theirs, (mine + HASHING_NICENESS).min(19), "a hashing thread's nice value");
        let hash = hasher.reserve().unwrap().hash(Zeroizing::new("pw".into())).await.unwrap();
        assert!(verify_password(&hash, "pw"));
    }
}
