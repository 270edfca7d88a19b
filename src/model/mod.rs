//! Types shared by the server, the REST JSON, the server functions and the components.
//!
//! Nothing here carries a secret value outward: listings hold `has_value`, never the value.
//! Request bodies that carry a value are deserialize-only on the server side of the REST API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod history;
mod studio;
mod webhooks;
mod workflow;
pub use history::*;
pub use studio::*;
pub use webhooks::*;
pub use workflow::*;

/// One secret as any listing shows it: its key and whether it has a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretItem {
    pub id: Uuid,
    pub key: String,
    pub has_value: bool,
    pub updated_at: DateTime<Utc>,
    /// Counts the values written, from 1; a write may name it (`If-Match: "<version>"`) to be
    /// refused if the secret changed since.
    pub version: i64,
}

/// A key an agent can use, as `get_secret_keys` answers: `global` when only the server's
/// operator provides it (a workspace secret of the same key wins and is `global: false`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyState {
    pub key: String,
    pub has_value: bool,
    pub global: bool,
}

/// A key the server provides to every workspace, as a workspace page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalKey {
    pub key: String,
    pub has_value: bool,
    /// This workspace holds a secret of the same key, which wins.
    pub overridden: bool,
}

/// Body of `POST .../secrets` and `PUT .../secrets/upsert`.
#[derive(Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretInput {
    /// An environment variable name (200 characters at most by default; configurable).
    #[cfg_attr(feature = "ssr", schema(pattern = "^[A-Za-z_][A-Za-z0-9_]*$", min_length = 1, max_length = 200))]
    pub key: String,
    /// The value; stored encrypted, never returned (64 KiB at most by default; configurable).
    pub value: String,
}

/// Body of `PUT .../secrets/:id`: an absent value leaves the stored one as it is.
#[derive(Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretUpdate {
    #[serde(default)]
    pub value: Option<String>,
}

/// Where a secret may be sent by `http_request`: `GET|PUT .../secrets/:id/egress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Egress {
    /// The secret's key.
    pub key: String,
    /// Origins the value may be sent to (`https://api.github.com`,
    /// `https://*.example.com:8443`, `http://127.0.0.1:9000`); empty: nowhere.
    pub hosts: Vec<String>,
}

/// Body of `PUT .../secrets/:id/egress`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EgressInput {
    /// Origins the value may be sent to, at most 50; empty: nowhere.
    pub hosts: Vec<String>,
}

/// Answer of `DELETE .../secrets/:id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Deleted {
    pub success: bool,
}

/// A workspace as the Studio lists it, with the caller's role in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceItem {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

/// What a member may do in a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Owner,
}

impl Role {
    /// The name stored in the database and shown in the Studio.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    /// Parses a stored role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// The signed-in person as the Studio shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUser {
    pub id: Uuid,
    pub username: String,
    pub is_admin: bool,
}

/// The error body every API answers with, and the error type of every server function:
/// `{"error": {"code": "...", "message": "..."}}` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// The JSON envelope of [`ApiError`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ApiError,
}

impl ApiError {
    /// An error with the given machine-readable code and human message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError { code: code.to_string(), message: message.into() }
    }
}

impl leptos::server_fn::error::FromServerFnError for ApiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(_) => ApiError::new("network", "The server could not be reached."),
            E::Args(m) | E::MissingArg(m) => ApiError::new("bad_request", m),
            other => ApiError::new("server_fn", other.to_string()),
        }
    }
}

/// One line of a workspace's audit log: who did what to which key, never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The label as recorded: `user:<name>`, `token:<id>`, `cli:<command>` or `system`.
    pub actor: String,
    /// Who that is by name: the user's name, or the token's name (also once it is revoked).
    #[cfg_attr(feature = "ssr", sqlx(default))]
    pub actor_name: Option<String>,
    pub action: String,
    pub key: Option<String>,
    pub detail: Option<String>,
    /// The request (workflow run) the entry is about.
    #[cfg_attr(feature = "ssr", sqlx(default))]
    pub run_id: Option<Uuid>,
    /// The secret the entry is about, while a secret with its key exists.
    #[cfg_attr(feature = "ssr", sqlx(default))]
    pub secret_id: Option<Uuid>,
}

/// An API token as listings show it (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// A token just created: the only time its text is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub info: TokenInfo,
    pub token: String,
}

/// A workspace member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
}

/// One of the signed-in user's Studio sessions, as the account page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The client address it was opened from.
    pub client: Option<String>,
    pub user_agent: Option<String>,
    /// Whether it is the session of this request.
    pub current: bool,
}
