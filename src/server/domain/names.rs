//! The names and the password people type: a user's, a workspace's, a token's. Each is
//! checked once, where it comes in.

use zeroize::Zeroizing;

use crate::server::error::AppError;

/// A sign-in name: 3 to 64 of letters, digits, `_`, `.`, `-`; compared lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses and lowercases a username.
    pub fn parse(raw: &str) -> Result<Username, AppError> {
        let raw = raw.trim();
        let ok_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !(3..=64).contains(&raw.len()) || !ok_chars {
            return Err(AppError::BadRequest("username must be 3 to 64 letters, digits, '_', '.' or '-'".into()));
        }
        Ok(Username(raw.to_ascii_lowercase()))
    }

    /// The username as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A workspace's name: 1 to 100 characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    /// Trims and checks a workspace name.
    pub fn parse(raw: &str) -> Result<WorkspaceName, AppError> {
        label(raw, "workspace name").map(WorkspaceName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An API token's name: 1 to 100 characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    /// Trims and checks a token name.
    pub fn parse(raw: &str) -> Result<TokenName, AppError> {
        label(raw, "token name").map(TokenName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A trimmed name of 1 to 100 characters; the error names `what`.
fn label(raw: &str, what: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::BadRequest(format!("{what} must be 1 to 100 characters")));
    }
    Ok(name.to_string())
}

/// A password someone chooses: at least 8 characters. Held in memory that is wiped when
/// dropped, and never printed.
pub struct NewPassword(Zeroizing<String>);

impl NewPassword {
    /// Checks a chosen password.
    pub fn parse(raw: &str) -> Result<NewPassword, AppError> {
        if raw.chars().count() < 8 {
            return Err(AppError::BadRequest("password must be at least 8 characters".into()));
        }
        Ok(NewPassword(Zeroizing::new(raw.to_string())))
    }

    /// The password, for hashing.
    pub fn into_inner(self) -> Zeroizing<String> {
        self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked_where_they_come_in() {
        assert_eq!(Username::parse("Admin").unwrap().as_str(), "admin");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("a b c").is_err());
        assert_eq!(WorkspaceName::parse("  main ").unwrap().as_str(), "main");
        assert!(WorkspaceName::parse("   ").is_err());
        assert!(WorkspaceName::parse(&"w".repeat(101)).is_err());
        assert_eq!(TokenName::parse(" ci ").unwrap().as_str(), "ci");
        assert!(TokenName::parse("").is_err());
        assert!(NewPassword::parse("seven77").is_err());
        assert!(NewPassword::parse("eight888").is_ok());
        assert_eq!(format!("{:?}", NewPassword::parse("hunter2hunter2").unwrap()), "NewPassword([REDACTED])");
    }
}
