//! What an audit entry records: every action the log knows, each with its stored name.

/// An action of the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// `secret.created`
    SecretCreated,
    /// `secret.updated`
    SecretUpdated,
    /// `secret.upserted`
    SecretUpserted,
    /// `secret.deleted`
    SecretDeleted,
    /// `secret.read`
    SecretRead,
    /// `secret.checked`: a candidate compared with the stored value (`check_secret`)
    SecretChecked,
    /// `secret.used`: a value sent by `http_request`, with the host and the status
    SecretUsed,
    /// `secret.egress_denied`: a request that would have sent a value elsewhere, refused
    SecretEgressDenied,
    /// `secret.egress_changed`: the hosts a secret may be sent to changed
    SecretEgressChanged,
    /// `leak.blocked`: a value on its way out was masked (where, which key)
    LeakBlocked,
    /// `key.rotated`
    KeyRotated,
    /// `request.submitted`
    RequestSubmitted,
    /// `request.cancelled`
    RequestCancelled,
    /// `request.expired`
    RequestExpired,
    /// `member.added`
    MemberAdded,
    /// `member.changed`
    MemberChanged,
    /// `token.created`
    TokenCreated,
    /// `token.revoked`
    TokenRevoked,
    /// `user.signed_in`
    UserSignedIn,
    /// `user.sign_in_failed`
    UserSignInFailed,
    /// `user.sessions_ended`
    UserSessionsEnded,
    /// `user.password_changed`
    UserPasswordChanged,
}

impl AuditAction {
    /// The name stored and shown, e.g. `secret.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SecretCreated => "secret.created",
            AuditAction::SecretUpdated => "secret.updated",
            AuditAction::SecretUpserted => "secret.upserted",
            AuditAction::SecretDeleted => "secret.deleted",
            AuditAction::SecretRead => "secret.read",
            AuditAction::SecretChecked => "secret.checked",
            AuditAction::SecretUsed => "secret.used",
            AuditAction::SecretEgressDenied => "secret.egress_denied",
            AuditAction::SecretEgressChanged => "secret.egress_changed",
            AuditAction::LeakBlocked => "leak.blocked",
            AuditAction::KeyRotated => "key.rotated",
            AuditAction::RequestSubmitted => "request.submitted",
            AuditAction::RequestCancelled => "request.cancelled",
            AuditAction::RequestExpired => "request.expired",
            AuditAction::MemberAdded => "member.added",
            AuditAction::MemberChanged => "member.changed",
            AuditAction::TokenCreated => "token.created",
            AuditAction::TokenRevoked => "token.revoked",
            AuditAction::UserSignedIn => "user.signed_in",
            AuditAction::UserSignInFailed => "user.sign_in_failed",
            AuditAction::UserSessionsEnded => "user.sessions_ended",
            AuditAction::UserPasswordChanged => "user.password_changed",
        }
    }
}
