//! A secret's history as every side sees it: its versions (never values), the deleted secrets
//! that can be restored, the requests to roll back or restore, the workspace's check-and-set
//! setting, and the Studio's history page.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SecretItem, WorkspaceItem};

/// One version of a secret, as its history lists it: never the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// Who wrote it (an actor label, as the audit log records it).
    pub created_by: String,
    pub has_value: bool,
}

/// A deleted secret that can still be restored (`POST .../secrets/restore {key}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
#[serde(rename_all = "camelCase")]
pub struct DeletedSecret {
    pub id: Uuid,
    pub key: String,
    /// The version it was at when deleted (a restore brings that one back).
    pub version: i64,
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: String,
}

/// `POST .../secrets/:id/rollback`: make an old version current again, as a new version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: i64,
}

/// A workspace's settings (`GET|PUT /api/v1/workspaces/:ws/settings`; owners change them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSettings {
    /// Every write to a secret must name the version it replaces (`If-Match`); one without is
    /// 428 `version_required`.
    pub require_check_and_set: bool,
}

/// `POST .../secrets/restore`: bring back a secret deleted within the retention window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    pub key: String,
}

/// The Studio's history page of one secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHistory {
    pub workspace: WorkspaceItem,
    pub secret: SecretItem,
    /// Versions kept, newest first.
    pub versions: Vec<SecretVersion>,
}
