//! How much history secrets keep, and the check-and-set rule: a write that names the version it
//! replaces is refused when the secret is at another one, and a workspace can require every
//! write to name one.

use crate::server::error::AppError;

/// Versions kept per secret and how long a deleted secret can be restored; configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    /// Versions kept per secret, the current one included (at least 1).
    pub keep_versions: i64,
    /// How long a deleted secret's versions are kept for a restore.
    pub deleted_retention: chrono::Duration,
}

impl Default for History {
    fn default() -> History {
        History { keep_versions: 10, deleted_retention: chrono::Duration::days(7) }
    }
}

/// The version a write expects its secret to be at (`If-Match`, `expectedVersion`), if any.
pub type Expected = Option<i64>;

/// Whether a write may replace a secret at version `current` (0: there is none yet): 412 when
/// it names another version, 428 when it names none and the workspace requires one.
pub fn check_version(current: i64, expected: Expected, required: bool) -> Result<(), AppError> {
    match expected {
        Some(expected) if expected != current => Err(AppError::VersionMismatch { current, expected }),
        Some(_) => Ok(()),
        None if required => Err(AppError::VersionRequired),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_refused_only_for_another_version_or_none_when_one_is_required() {
        assert!(check_version(3, Some(3), true).is_ok());
        assert!(check_version(3, None, false).is_ok());
        assert!(matches!(check_version(3, Some(2), false), Err(AppError::VersionMismatch { current: 3, expected: 2 })));
        assert!(matches!(check_version(0, Some(1), false), Err(AppError::VersionMismatch { current: 0, expected: 1 })));
        assert!(matches!(check_version(3, None, true), Err(AppError::VersionRequired)));
    }
}
