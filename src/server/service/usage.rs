//! Using a secret without revealing it: each secret's egress policy (where `http_request` may
//! send it) and `check_secret` (does a candidate equal the stored value). Nothing here returns
//! a value.

use chrono::Utc;
use uuid::Uuid;

use crate::model::Egress;
use crate::server::domain::egress::EgressPolicy;
use crate::server::domain::{Actor, AuditAction, SecretKey, SecretValue};
use crate::server::error::AppError;
use crate::server::keys::passwords::{constant_time_eq, sha256};
use crate::server::service::secrets::SecretService;
use crate::server::store::{self, Db};

/// Checks one actor may make per workspace and minute.
pub const CHECKS_PER_MINUTE: i64 = 20;

/// A secret's egress policy; 404 when the workspace has no such secret.
pub async fn egress(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Egress, AppError> {
    let (key, hosts) = store::egress_of(db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
    Ok(Egress { key, hosts })
}

/// Replaces a secret's egress policy (audited with the new hosts).
pub async fn set_egress(
    db: &Db,
    workspace_id: Uuid,
    id: Uuid,
    hosts: &[String],
    actor: &Actor,
) -> Result<Egress, AppError> {
    let hosts = EgressPolicy::parse(hosts)?.to_strings();
    let mut tx = db.begin().await?;
    let key = store::set_egress_in(&mut tx, workspace_id, id, &hosts).await?.ok_or(AppError::NotFound)?;
    let detail = if hosts.is_empty() { "hosts: none".to_string() } else { format!("hosts: {}", hosts.join(", ")) };
    let entry = store::Audit::of(workspace_id, actor, AuditAction::SecretEgressChanged, Some(&key), Some(&detail));
    store::audit(&mut tx, &entry).await?;
    tx.commit().await?;
    Ok(Egress { key, hosts })
}

/// Whether `candidate` equals the stored value of `key`, compared in constant time (digests of
/// both, so not even the length shows). Audited with the answer; at most
/// [`CHECKS_PER_MINUTE`] per actor and workspace (429 past it). 404 for an unknown key.
pub async fn check_secret(
    secrets: &SecretService,
    workspace_id: Uuid,
    key: &SecretKey,
    candidate: &SecretValue,
    actor: &Actor,
) -> Result<bool, AppError> {
    let db = secrets.db();
    let since = Utc::now() - chrono::Duration::seconds(60);
    if store::count_actions_since(db, workspace_id, &actor.0, AuditAction::SecretChecked, since).await?
        >= CHECKS_PER_MINUTE
    {
        return Err(AppError::TooManyRequests(60));
    }
    let stored = secrets.value_for_use(workspace_id, key).await?.ok_or(AppError::NotFound)?;
    let matches = constant_time_eq(&sha256(stored.value.expose()), &sha256(candidate.expose()));
    let detail = match (matches, stored.global) {
        (true, false) => "matches",
        (false, false) => "does not match",
        (true, true) => "matches (global value)",
        (false, true) => "does not match (global value)",
    };
    let entry = store::Audit::of(workspace_id, actor, AuditAction::SecretChecked, Some(key.as_str()), Some(detail));
    store::audit(db, &entry).await?;
    Ok(matches)
}
