//! What an audit entry records: every action the log knows, each with its stored name, and the
//! hash chain that makes the log tamper-evident: each entry of a workspace holds the hash of the
//! entry before it, so an edited, removed or reordered entry breaks the chain where it was.

use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

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
    /// `secret.rolled_back`: an old version made current again, as a new version
    SecretRolledBack,
    /// `secret.restored`: a deleted secret brought back within the retention window
    SecretRestored,
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
    /// `workspace.settings_changed`
    WorkspaceSettingsChanged,
    /// `webhook.created`
    WebhookCreated,
    /// `webhook.changed`: disabled or enabled
    WebhookChanged,
    /// `webhook.deleted`
    WebhookDeleted,
    /// `webhook.resent`: a delivery sent again
    WebhookResent,
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
            AuditAction::SecretRolledBack => "secret.rolled_back",
            AuditAction::SecretRestored => "secret.restored",
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
            AuditAction::WorkspaceSettingsChanged => "workspace.settings_changed",
            AuditAction::WebhookCreated => "webhook.created",
            AuditAction::WebhookChanged => "webhook.changed",
            AuditAction::WebhookDeleted => "webhook.deleted",
            AuditAction::WebhookResent => "webhook.resent",
            AuditAction::UserSignedIn => "user.signed_in",
            AuditAction::UserSignInFailed => "user.sign_in_failed",
            AuditAction::UserSessionsEnded => "user.sessions_ended",
            AuditAction::UserPasswordChanged => "user.password_changed",
        }
    }
}

/// What comes before the first entry of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// The chain an entry belongs to: its workspace's, or the accounts' chain (sign-ins, sessions,
/// passwords) under the nil id.
pub fn chain_of(workspace_id: Option<Uuid>) -> Uuid {
    workspace_id.unwrap_or(Uuid::nil())
}

/// The time an entry records, to the microsecond (what both engines keep), so the hash taken
/// at write time is the hash of what is read back.
pub fn entry_time(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(6)
}

/// Everything an audit entry's hash covers: its place in its chain and every field it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link<'a> {
    pub workspace_id: Option<Uuid>,
    pub seq: i64,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub key: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub run_id: Option<Uuid>,
}

impl Link<'_> {
    /// SHA-256 over the canonical encoding: a version line, then each field as a one-byte tag
    /// and, when present, its length (u32, big-endian) and bytes, then the previous hash. No
    /// two different entries encode alike, whatever their text holds.
    pub fn hash(&self, prev: &[u8]) -> [u8; 32] {
        let (head, tail) = self.encoding_around_place();
        let mut last = Vec::with_capacity(5 + prev.len());
        field(&mut last, Some(prev));
        let mut h = Sha256::new();
        h.update(head);
        h.update(self.seq.to_be_bytes());
        h.update(tail);
        h.update(last);
        h.finalize().into()
    }

    /// The canonical encoding without the place's 8 bytes and the previous hash's field: the
    /// bytes before the place and those after it. A database that gives the place computes
    /// the hash from them (PostgreSQL's one-trip upsert, migration 0013).
    pub fn encoding_around_place(&self) -> (Vec<u8>, Vec<u8>) {
        let mut head = b"loopstack-secrets audit v1\n".to_vec();
        field(&mut head, Some(chain_of(self.workspace_id).as_bytes()));
        head.extend([1u8, 0, 0, 0, 8]);
        let mut tail = Vec::with_capacity(128);
        field(&mut tail, Some(self.id.as_bytes()));
        field(&mut tail, Some(self.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string().as_bytes()));
        field(&mut tail, Some(self.actor.as_bytes()));
        field(&mut tail, Some(self.action.as_bytes()));
        field(&mut tail, self.key.map(str::as_bytes));
        field(&mut tail, self.detail.map(str::as_bytes));
        field(&mut tail, self.run_id.as_ref().map(|id| &id.as_bytes()[..]));
        (head, tail)
    }
}

/// A field of the encoding: a one-byte tag and, when present, its length (u32, big-endian) and
/// bytes.
fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend((bytes.len() as u32).to_be_bytes());
            out.extend(bytes);
        }
    }
}

/// Why an entry does not fit its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// Its place is not the one after the entry before it (one was removed or moved).
    Sequence { expected: i64 },
    /// The hash it names as its predecessor's is not the predecessor's.
    Previous,
    /// Its hash is not the hash of what it holds (it was edited).
    Contents,
    /// The chain's head records a later entry than the last one there (entries at the end were
    /// removed), or an earlier one.
    Head { head_seq: i64 },
    /// It was written outside the chain (no place, no hash).
    Unchained,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Sequence { expected } => {
                write!(f, "expected entry number {expected} here: an entry was removed or moved")
            }
            Break::Previous => f.write_str("the previous hash it holds is not the hash of the entry before it"),
            Break::Contents => f.write_str("its hash does not match its contents: it was edited"),
            Break::Head { head_seq } => {
                write!(f, "the chain's head records {head_seq} entries: entries after this one were removed")
            }
            Break::Unchained => f.write_str("it is not part of the chain (no number and no hash)"),
        }
    }
}

/// Walks one chain in order, entry by entry, and stops at the first that does not fit.
#[derive(Debug)]
pub struct ChainCheck {
    seq: i64,
    prev: [u8; 32],
}

impl Default for ChainCheck {
    fn default() -> ChainCheck {
        ChainCheck { seq: 0, prev: GENESIS }
    }
}

impl ChainCheck {
    /// Checks the next entry, given the previous hash and the hash it holds.
    pub fn next(&mut self, link: &Link<'_>, prev_hash: &[u8], hash: &[u8]) -> Result<(), Break> {
        if link.seq != self.seq + 1 {
            return Err(Break::Sequence { expected: self.seq + 1 });
        }
        if prev_hash != self.prev {
            return Err(Break::Previous);
        }
        let computed = link.hash(prev_hash);
        if hash != computed {
            return Err(Break::Contents);
        }
        self.seq = link.seq;
        self.prev = computed;
        Ok(())
    }

    /// Entries checked so far.
    pub fn entries(&self) -> i64 {
        self.seq
    }

    /// Checks the end of the chain against its head (the last place and hash written).
    pub fn finish(&self, head: Option<(i64, &[u8])>) -> Result<(), Break> {
        let (head_seq, head_hash) = head.unwrap_or((0, &GENESIS));
        if head_seq != self.seq || head_hash != self.prev {
            return Err(Break::Head { head_seq });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(seq: i64, detail: Option<&str>) -> Link<'_> {
        Link {
            workspace_id: Some(Uuid::from_u128(7)),
            seq,
            id: Uuid::from_u128(seq as u128),
            at: entry_time(Utc::now()),
            actor: "user:alice",
            action: "secret.created",
            key: Some("API_KEY"),
            detail,
            run_id: None,
        }
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let a = Link { key: Some("AB"), detail: Some("C"), ..link(1, None) };
        let b = Link { key: Some("A"), detail: Some("BC"), ..a.clone() };
        let c = Link { key: None, detail: Some("ABC"), ..a.clone() };
        let d = Link { key: Some(""), detail: Some("ABC"), ..a.clone() };
        let hashes = [a.hash(&GENESIS), b.hash(&GENESIS), c.hash(&GENESIS), d.hash(&GENESIS)];
        for (i, x) in hashes.iter().enumerate() {
            for y in &hashes[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn a_chain_checks_and_each_kind_of_break_is_named() {
        let links = [link(1, None), link(2, Some("x")), link(3, None)];
        let mut hashes = vec![];
        let mut prev = GENESIS;
        for l in &links {
            prev = l.hash(&prev);
            hashes.push(prev);
        }
        let prevs = [GENESIS, hashes[0], hashes[1]];
        let mut check = ChainCheck::default();
        for i in 0..3 {
            check.next(&links[i], &prevs[i], &hashes[i]).unwrap();
        }
        check.finish(Some((3, &hashes[2]))).unwrap();
        assert_eq!(check.finish(Some((4, &hashes[2]))), Err(Break::Head { head_seq: 4 }));

        let mut check = ChainCheck::default();
        check.next(&links[0], &prevs[0], &hashes[0]).unwrap();
        assert_eq!(check.next(&links[2], &prevs[2], &hashes[2]), Err(Break::Sequence { expected: 2 }));
        let edited = Link { detail: Some("y"), ..links[1].clone() };
        assert_eq!(check.next(&edited, &prevs[1], &hashes[1]), Err(Break::Contents));
        assert_eq!(check.next(&links[1], &GENESIS, &hashes[1]), Err(Break::Previous));
    }
}
