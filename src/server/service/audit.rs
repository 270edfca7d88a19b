//! Reading the audit log: a workspace's entries (filtered by action, actor or key) and a user's
//! own sign-ins and failed attempts. Entries are written by the services, each in the
//! transaction of the change it describes.

use uuid::Uuid;

use crate::model::AuditEvent;
use crate::server::error::AppError;
use crate::server::store::{self, Db};

/// Entries a workspace's log shows at most.
const LOG_LIMIT: i64 = 500;
/// Sign-in events the account page shows.
const SIGN_INS_LIMIT: i64 = 20;

/// A workspace's audit log, newest first; `search` matches action, actor or key literally.
pub async fn workspace_log(db: &Db, workspace_id: Uuid, search: Option<&str>) -> Result<Vec<AuditEvent>, AppError> {
    store::audit_events(db, workspace_id, search, LOG_LIMIT).await
}

/// A user's recent sign-ins and failed attempts, newest first.
pub async fn sign_ins(db: &Db, username: &str) -> Result<Vec<AuditEvent>, AppError> {
    store::sign_in_events(db, username, SIGN_INS_LIMIT).await
}
