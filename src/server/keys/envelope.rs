//! Envelope encryption. The master key (KEK) wraps one data key (DEK) per workspace; values
//! are sealed with AES-256-GCM under the DEK with a fresh random nonce and associated data that
//! binds each ciphertext to its workspace, secret and key name, so a row copied elsewhere or
//! renamed does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::server::error::AppError;

/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Plaintext sealed under the master key to recognise it again at start.
const KEY_CHECK_PLAINTEXT: &[u8] = b"loopstack-secrets master key check v1";

/// The key-encryption key. Never leaves the process; zeroized on drop.
pub struct MasterKey {
    raw: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl MasterKey {
    fn from_bytes(raw: Zeroizing<[u8; 32]>) -> MasterKey {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(raw.as_ref()));
        MasterKey { raw, cipher }
    }

    /// A new random key.
    pub fn generate() -> MasterKey {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        MasterKey::from_bytes(raw)
    }

    /// Parses a base64 key of exactly 32 bytes.
    pub fn from_base64(text: &str) -> anyhow::Result<MasterKey> {
        let bytes = Zeroizing::new(B64.decode(text.trim()).context("the master key is not valid base64")?);
        if bytes.len() != 32 {
            bail!("the master key must be 32 bytes (base64 of 32 random bytes), got {} bytes", bytes.len());
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        raw.copy_from_slice(&bytes);
        Ok(MasterKey::from_bytes(raw))
    }

    /// The key as base64, for writing the key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.raw.as_ref()))
    }

    /// A 32-byte key for another purpose, derived from this one with HMAC-SHA256 over `label`
    /// (the same on every instance sharing the master key; a new master key changes it).
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.raw.as_ref()).expect("BUG: HMAC takes any key");
        mac.update(b"loopstack-secrets derived key v1:");
        mac.update(label.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// Seals a workspace's data key; the result is `nonce || ciphertext`.
    pub fn wrap(&self, dek: &DataKey, workspace_id: Uuid, version: i32) -> Vec<u8> {
        seal(&self.cipher, dek.raw.as_ref(), &dek_aad(workspace_id, version))
    }

    /// Opens a wrapped data key; fails on a wrong master key or a tampered row.
    pub fn unwrap(&self, wrapped: &[u8], workspace_id: Uuid, version: i32) -> Result<DataKey, AppError> {
        let raw = open(&self.cipher, wrapped, &dek_aad(workspace_id, version))?;
        if raw.len() != 32 {
            return Err(AppError::Crypto);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&raw);
        Ok(DataKey::from_bytes(key))
    }

    /// A blob stored once per database that only this key opens.
    pub fn key_check(&self) -> Vec<u8> {
        seal(&self.cipher, KEY_CHECK_PLAINTEXT, b"key-check")
    }

    /// Whether `blob` was made by [`MasterKey::key_check`] with this key.
    pub fn verifies(&self, blob: &[u8]) -> bool {
        open(&self.cipher, blob, b"key-check").map(|p| p.as_slice() == KEY_CHECK_PLAINTEXT).unwrap_or(false)
    }
}

/// A workspace's data key; zeroized on drop.
pub struct DataKey {
    raw: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl DataKey {
    fn from_bytes(raw: Zeroizing<[u8; 32]>) -> DataKey {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(raw.as_ref()));
        DataKey { raw, cipher }
    }

    /// A new random data key.
    pub fn generate() -> DataKey {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        DataKey::from_bytes(raw)
    }

    /// Seals a secret value bound to its workspace, secret id, key name and version (associated
    /// data version [`VALUE_AAD_VERSION`]): `(nonce, ciphertext)`.
    pub fn seal_value(&self, value: &[u8], to: &ValueBinding<'_>) -> (Vec<u8>, Vec<u8>) {
        let mut blob = seal(&self.cipher, value, &value_aad(to, VALUE_AAD_VERSION));
        let ciphertext = blob.split_off(NONCE_LEN);
        (blob, ciphertext)
    }

    /// Opens a value sealed by [`DataKey::seal_value`] for the same binding, with the associated
    /// data version it was sealed under (1: workspace and secret id only, from before key names
    /// were bound; 2: with the key name; 3: with the key name and the secret's version).
    pub fn open_value(
        &self,
        nonce: &[u8],
        ciphertext: &[u8],
        to: &ValueBinding<'_>,
        aad_version: i32,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        if nonce.len() != NONCE_LEN {
            return Err(AppError::Crypto);
        }
        let payload = Payload { msg: ciphertext, aad: &value_aad(to, aad_version) };
        self.cipher.decrypt(Nonce::from_slice(nonce), payload).map(Zeroizing::new).map_err(|_| AppError::Crypto)
    }
}

impl DataKey {
    /// Seals a webhook's signing secret, bound to its workspace and webhook id:
    /// `(nonce, ciphertext)`.
    pub fn seal_webhook_secret(&self, secret: &[u8], workspace_id: Uuid, webhook_id: Uuid) -> (Vec<u8>, Vec<u8>) {
        let mut blob = seal(&self.cipher, secret, &webhook_aad(workspace_id, webhook_id));
        let ciphertext = blob.split_off(NONCE_LEN);
        (blob, ciphertext)
    }

    /// Opens a webhook's signing secret sealed by [`DataKey::seal_webhook_secret`].
    pub fn open_webhook_secret(
        &self,
        nonce: &[u8],
        ciphertext: &[u8],
        workspace_id: Uuid,
        webhook_id: Uuid,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        if nonce.len() != NONCE_LEN {
            return Err(AppError::Crypto);
        }
        let payload = Payload { msg: ciphertext, aad: &webhook_aad(workspace_id, webhook_id) };
        self.cipher.decrypt(Nonce::from_slice(nonce), payload).map(Zeroizing::new).map_err(|_| AppError::Crypto)
    }
}

fn webhook_aad(workspace_id: Uuid, webhook_id: Uuid) -> Vec<u8> {
    let mut aad = b"loopstack-secrets:webhook:v1:".to_vec();
    aad.extend_from_slice(workspace_id.as_bytes());
    aad.extend_from_slice(webhook_id.as_bytes());
    aad
}

/// What a sealed value is bound to: a row copied to another workspace or secret, renamed to
/// another key, or passed off as another version of its secret, does not open.
pub struct ValueBinding<'a> {
    pub workspace_id: Uuid,
    pub secret_id: Uuid,
    pub key: &'a str,
    /// The secret's version the value is (from 1).
    pub version: i64,
}

/// The associated-data version new ciphertexts are sealed under (see [`DataKey::open_value`]).
pub const VALUE_AAD_VERSION: i32 = 3;

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("BUG: AES-GCM encryption only fails for plaintexts over 64 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open(cipher: &Aes256Gcm, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, AppError> {
    if blob.len() < NONCE_LEN {
        return Err(AppError::Crypto);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| AppError::Crypto)
}

fn dek_aad(workspace_id: Uuid, version: i32) -> Vec<u8> {
    let mut aad = b"loopstack-secrets:dek:v1:".to_vec();
    aad.extend_from_slice(workspace_id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn value_aad(to: &ValueBinding<'_>, version: i32) -> Vec<u8> {
    let mut aad = match version {
        1 => b"loopstack-secrets:secret:v1:".to_vec(),
        2 => b"loopstack-secrets:secret:v2:".to_vec(),
        _ => b"loopstack-secrets:secret:v3:".to_vec(),
    };
    aad.extend_from_slice(to.workspace_id.as_bytes());
    aad.extend_from_slice(to.secret_id.as_bytes());
    if version >= 2 {
        aad.extend_from_slice(&(to.key.len() as u32).to_be_bytes());
        aad.extend_from_slice(to.key.as_bytes());
    }
    if version >= 3 {
        aad.extend_from_slice(&to.version.to_be_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ws: Uuid, id: Uuid, key: &str) -> ValueBinding<'_> {
        ValueBinding { workspace_id: ws, secret_id: id, key, version: 1 }
    }

    #[test]
    fn a_value_opens_only_for_its_own_workspace_secret_and_key() {
        let dek = DataKey::generate();
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        let (nonce, ct) = dek.seal_value(b"sk-live-123", &binding(ws, id, "API_KEY"));
        assert_eq!(dek.open_value(&nonce, &ct, &binding(ws, id, "API_KEY"), 3).unwrap().as_slice(), b"sk-live-123");
        assert!(dek.open_value(&nonce, &ct, &binding(Uuid::new_v4(), id, "API_KEY"), 3).is_err());
        assert!(dek.open_value(&nonce, &ct, &binding(ws, Uuid::new_v4(), "API_KEY"), 3).is_err());
        assert!(dek.open_value(&nonce, &ct, &binding(ws, id, "OTHER_KEY"), 3).is_err(), "a renamed row does not open");
        let later = ValueBinding { version: 2, ..binding(ws, id, "API_KEY") };
        assert!(dek.open_value(&nonce, &ct, &later, 3).is_err(), "nor as another version");
        assert!(dek.open_value(&nonce, &ct, &binding(ws, id, "API_KEY"), 2).is_err(), "nor under an old binding");
        assert!(dek.open_value(&nonce, &ct, &binding(ws, id, "API_KEY"), 1).is_err());
    }

    #[test]
    fn a_value_sealed_before_key_names_were_bound_still_opens() {
        let dek = DataKey::generate();
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        let old = seal(&dek.cipher, b"legacy", &value_aad(&binding(ws, id, "IGNORED"), 1));
        let (nonce, ct) = old.split_at(NONCE_LEN);
        assert_eq!(dek.open_value(nonce, ct, &binding(ws, id, "ANY_NAME"), 1).unwrap().as_slice(), b"legacy");
    }

    #[test]
    fn a_webhook_secret_opens_only_for_its_own_webhook() {
        let dek = DataKey::generate();
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        let (nonce, ct) = dek.seal_webhook_secret(b"whsec_x", ws, id);
        assert_eq!(dek.open_webhook_secret(&nonce, &ct, ws, id).unwrap().as_slice(), b"whsec_x");
        assert!(dek.open_webhook_secret(&nonce, &ct, ws, Uuid::new_v4()).is_err());
        assert!(dek.open_value(&nonce, &ct, &binding(ws, id, "K"), 3).is_err(), "nor as a value");
    }

    #[test]
    fn a_tampered_ciphertext_does_not_open() {
        let dek = DataKey::generate();
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        let (nonce, mut ct) = dek.seal_value(b"value", &binding(ws, id, "K"));
        ct[0] ^= 1;
        assert!(matches!(dek.open_value(&nonce, &ct, &binding(ws, id, "K"), 3), Err(AppError::Crypto)));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let dek = DataKey::generate();
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        let (n1, c1) = dek.seal_value(b"same", &binding(ws, id, "K"));
        let (n2, c2) = dek.seal_value(b"same", &binding(ws, id, "K"));
        assert_ne!(n1, n2);
        assert_ne!(c1, c2);
    }

    #[test]
    fn a_data_key_unwraps_only_with_the_master_key_that_wrapped_it() {
        let (kek, other) = (MasterKey::generate(), MasterKey::generate());
        let dek = DataKey::generate();
        let ws = Uuid::new_v4();
        let wrapped = kek.wrap(&dek, ws, 1);
        let back = kek.unwrap(&wrapped, ws, 1).unwrap();
        assert_eq!(back.raw.as_ref(), dek.raw.as_ref());
        assert!(other.unwrap(&wrapped, ws, 1).is_err());
        assert!(kek.unwrap(&wrapped, ws, 2).is_err());
    }

    #[test]
    fn the_key_check_recognises_only_its_key() {
        let (kek, other) = (MasterKey::generate(), MasterKey::generate());
        let check = kek.key_check();
        assert!(kek.verifies(&check));
        assert!(!other.verifies(&check));
    }

    #[test]
    fn a_master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&B64.encode([0u8; 16])).is_err());
        let key = MasterKey::generate();
        assert!(MasterKey::from_base64(&key.to_base64()).is_ok());
    }
}
