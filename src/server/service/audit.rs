//! Reading the audit log: a workspace's entries (filtered by action, actor or key) and a user's
//! own sign-ins and failed attempts. Entries are written by the services, each in the
//! transaction of the change it describes.

use uuid::Uuid;

use crate::model::AuditEvent;
use crate::server::error::AppError;
use crate::server::service::secrets::SecretService;
use crate::server::store::{self, Db};

/// Entries a workspace's log shows at most.
const LOG_LIMIT: i64 = 500;
/// Sign-in events the account page shows.
const SIGN_INS_LIMIT: i64 = 20;

/// A workspace's audit log, newest first; `search` matches action, actor or key literally.
/// Details pass the workspace's leak guard (a detail is built from input, which might hold a
/// value).
pub async fn workspace_log(
    secrets: &SecretService,
    workspace_id: Uuid,
    search: Option<&str>,
) -> Result<Vec<AuditEvent>, AppError> {
    let mut events = store::audit_events(secrets.db(), workspace_id, search, LOG_LIMIT).await?;
    let guard = secrets.leak_guard(workspace_id).await?;
    if !guard.is_empty() {
        for event in &mut events {
            if let Some(detail) = &mut event.detail {
                *detail = guard.mask_str(detail).0;
            }
        }
    }
    Ok(events)
}

/// A user's recent sign-ins and failed attempts, newest first.
pub async fn sign_ins(db: &Db, username: &str) -> Result<Vec<AuditEvent>, AppError> {
    store::sign_in_events(db, username, SIGN_INS_LIMIT).await
}
