//! Domain types parsed once at the edge: past this module a `SecretKey` is always valid and a
//! `SecretValue` is within limits and cannot be printed.

use crate::server::error::AppError;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// Input limits; configurable, defaults from DESIGN.md.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_key_len: usize,
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_key_len: 200, max_value_bytes: 64 * 1024 }
    }
}

/// A secret's name: 1..=max characters of `[A-Za-z_][A-Za-z0-9_]*`, usable as an environment
/// variable name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretKey(String);

impl SecretKey {
    /// Parses a key to write, saying what is wrong with it when it is not one; a reserved
    /// name (see [`crate::server::reserved`]) is a 400 `reserved_key`.
    pub fn parse(raw: &str, limits: &Limits) -> Result<SecretKey, AppError> {
        let key = SecretKey::existing(raw, limits)?;
        if crate::server::domain::reserved::is_reserved(key.as_str()) {
            return Err(AppError::ReservedKey(key.0));
        }
        Ok(key)
    }

    /// Parses the name of a key that may already be stored, for lookups by trusted code: the
    /// same syntax as [`SecretKey::parse`], without the reserved-name rule (data written before
    /// the rule existed must stay readable and deletable).
    pub fn existing(raw: &str, limits: &Limits) -> Result<SecretKey, AppError> {
        let len = raw.chars().count();
        if len == 0 {
            return Err(AppError::BadRequest("key must not be empty".into()));
        }
        if len > limits.max_key_len {
            return Err(AppError::BadRequest(format!("key must be at most {} characters", limits.max_key_len)));
        }
        let mut chars = raw.chars();
        let first = chars.next().expect("BUG: length checked above");
        let first_ok = first.is_ascii_alphabetic() || first == '_';
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(AppError::BadRequest(
                "key must match [A-Za-z_][A-Za-z0-9_]* (letters, digits and underscores, not starting with a digit)"
                    .into(),
            ));
        }
        Ok(SecretKey(raw.to_string()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret's value: at most `max_value_bytes`, zeroized on drop, never printed.
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Takes ownership of a value that came in from outside, checking its size.
    pub fn parse(raw: String, limits: &Limits) -> Result<SecretValue, AppError> {
        let value = SecretString::from(raw);
        if value.expose_secret().len() > limits.max_value_bytes {
            return Err(AppError::PayloadTooLarge(format!("value must be at most {} bytes", limits.max_value_bytes)));
        }
        Ok(SecretValue(value))
    }

    /// Wraps a value decrypted from storage.
    pub(crate) fn from_plaintext(value: SecretString) -> SecretValue {
        SecretValue(value)
    }

    /// The value, for the few places that must use it (encryption, `run`, `export`).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// An empty value means "has no value".
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl Clone for SecretValue {
    /// A second zeroized copy (a global value is handed to each use).
    fn clone(&self) -> SecretValue {
        SecretValue(SecretString::from(self.expose().to_string()))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

/// What an API token may do. A Studio session gets the scopes of the member's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    SecretsList,
    SecretsWrite,
    SecretsRead,
    ToolsCall,
    WorkflowsRun,
    /// Use a value without seeing it: `http_request` and `check_secret`. Reveals nothing.
    SecretsUse,
    /// Register, change and remove webhooks, and see their deliveries.
    WebhooksManage,
}

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 7] = [
        Scope::SecretsList,
        Scope::SecretsWrite,
        Scope::SecretsRead,
        Scope::ToolsCall,
        Scope::WorkflowsRun,
        Scope::SecretsUse,
        Scope::WebhooksManage,
    ];

    /// The scope's wire name, e.g. `secrets:list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SecretsList => "secrets:list",
            Scope::SecretsWrite => "secrets:write",
            Scope::SecretsRead => "secrets:read",
            Scope::ToolsCall => "tools:call",
            Scope::WorkflowsRun => "workflows:run",
            Scope::SecretsUse => "secrets:use",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// Parses a stored, space-separated list; an unknown name is an error, never dropped (a
    /// token must not quietly lose or keep a permission nobody can see).
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, AppError> {
        text.split_whitespace().map(Scope::parse).collect()
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Scope, AppError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| AppError::BadRequest(format!("unknown scope '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Result<SecretKey, AppError> {
        SecretKey::parse(s, &Limits::default())
    }

    #[test]
    fn an_ordinary_env_var_name_is_a_key() {
        assert_eq!(key("OPENAI_API_KEY").unwrap().as_str(), "OPENAI_API_KEY");
        assert!(key("_private").is_ok());
        assert!(key("a").is_ok());
    }

    #[test]
    fn a_key_that_changes_how_programs_run_is_reserved() {
        assert!(matches!(key("BASH_ENV"), Err(AppError::ReservedKey(k)) if k == "BASH_ENV"));
        assert!(matches!(key("LD_PRELOAD"), Err(AppError::ReservedKey(_))));
        assert_eq!(SecretKey::existing("BASH_ENV", &Limits::default()).unwrap().as_str(), "BASH_ENV");
    }

    #[test]
    fn a_key_starting_with_a_digit_is_rejected() {
        assert!(key("1PASSWORD").is_err());
    }

    #[test]
    fn an_empty_key_is_rejected() {
        assert!(key("").is_err());
    }

    #[test]
    fn a_key_with_a_dash_space_or_unicode_is_rejected() {
        for bad in ["MY-KEY", "MY KEY", "CLÉ", "KEY\n", "a.b", "$(rm)"] {
            assert!(key(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn a_key_of_exactly_the_limit_is_accepted_and_one_more_is_not() {
        assert!(key(&"K".repeat(200)).is_ok());
        assert!(key(&"K".repeat(201)).is_err());
    }

    #[test]
    fn a_value_over_the_limit_is_too_large() {
        let limits = Limits { max_key_len: 200, max_value_bytes: 4 };
        assert!(SecretValue::parse("abcd".into(), &limits).is_ok());
        assert!(matches!(SecretValue::parse("abcde".into(), &limits), Err(AppError::PayloadTooLarge(_))));
    }

    #[test]
    fn a_value_never_shows_in_debug_output() {
        let v = SecretValue::parse("hunter2".into(), &Limits::default()).unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn usernames_are_lowercased_and_checked() {}

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_rejected() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()).unwrap(), s);
        }
        assert!(Scope::parse("secrets:*").is_err());
        assert_eq!(Scope::parse_list("secrets:list tools:call").unwrap(), [Scope::SecretsList, Scope::ToolsCall]);
        assert!(Scope::parse_list("secrets:list secrets:admin").is_err(), "an unknown stored scope is not dropped");
    }
}
