//! Cryptography, and nothing above it: envelope encryption (the master key wraps one data key
//! per workspace; values are sealed under the data key), the master key file's lifecycle, and
//! the credential primitives (argon2 password hashing off the request threads, random secrets,
//! their stored hashes, constant-time comparison).

pub mod envelope;
pub mod key_file;
pub mod passwords;

pub use envelope::{DataKey, MasterKey, ValueBinding, NONCE_LEN, VALUE_AAD_VERSION};
pub use key_file::{load_master_key, KeySource, KEY_FILE_NAME};
