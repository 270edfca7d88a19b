//! Types shared by the server, the REST JSON, the server functions and the components.
//!
//! Nothing here carries a secret value outward: listings hold `has_value`, never the value.
//! Request bodies that carry a value are deserialize-only on the server side of the REST API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One secret as any listing shows it: its key and whether it has a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretItem {
    pub id: Uuid,
    pub key: String,
    pub has_value: bool,
    pub updated_at: DateTime<Utc>,
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

/// A workspace page: the workspace and its secrets, read in one server-function call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSecrets {
    pub workspace: WorkspaceItem,
    /// One page of the secrets that match the filter, by key.
    pub secrets: Vec<SecretItem>,
    /// Secrets in the workspace.
    pub total: usize,
    /// Secrets whose key matches the filter.
    pub matching: usize,
    /// This page, from 1; [`SECRETS_PAGE_SIZE`] secrets each.
    pub page: usize,
    /// The workspace's waiting secret requests, newest first.
    pub pending: Vec<PendingRequest>,
}

/// Rows per page of the Studio's secrets table.
pub const SECRETS_PAGE_SIZE: usize = 100;

/// A waiting secret request as the workspace page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    pub run_id: Uuid,
    pub workflow: String,
    pub keys: Vec<String>,
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

/// Where a workflow run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RunStatus> {
        [RunStatus::Running, RunStatus::Waiting, RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled]
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// Whether the run can still move.
    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Waiting)
    }
}

/// What a run document is. The variant's name is the one stored and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum DocumentKind {
    /// A form asking a person for secret values (`{variables: [{key}]}`).
    SecretRequestDocument,
    /// A markdown result (`{markdown}`).
    MarkdownDocument,
    /// What a sub-workflow reported to its parent (`{message, ...}`).
    TaskResult,
}

impl DocumentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::SecretRequestDocument => "SecretRequestDocument",
            DocumentKind::MarkdownDocument => "MarkdownDocument",
            DocumentKind::TaskResult => "TaskResult",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DocumentKind> {
        [DocumentKind::SecretRequestDocument, DocumentKind::MarkdownDocument, DocumentKind::TaskResult]
            .into_iter()
            .find(|kind| kind.as_str() == s)
    }
}

/// A document a run shows, in order (a SecretRequestDocument form, a markdown result, ...).
/// Its content never holds a secret value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunDocument {
    pub id: Uuid,
    pub kind: DocumentKind,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub content: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A workflow run as the API and the Studio show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRun {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow: String,
    pub place: String,
    pub status: RunStatus,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub args: serde_json::Value,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
    pub parent_id: Option<Uuid>,
    pub callback: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Transitions that can be fired from outside now (the run is waiting for them).
    pub transitions: Vec<String>,
    pub documents: Vec<RunDocument>,
}

/// One requested key of a SecretRequestDocument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestedKey {
    pub key: String,
}

/// The content of a SecretRequestDocument, and the arguments of the request tools.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretRequest {
    pub variables: Vec<RequestedKey>,
}

/// An agent tool: name, description and JSON Schema of its arguments.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub input_schema: serde_json::Value,
}

/// A run the caller can wait on.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub workflow_id: Uuid,
}

/// What a tool call returns to the agent. Never a secret value.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ToolResult {
    /// The tool's answer: `[{key, hasValue}]` for `get_secret_keys`, `{variables: [{key}]}`
    /// for `request_secrets`, `{workflowId}` for `request_secrets_task`.
    #[cfg_attr(feature = "ssr", schema(value_type = serde_json::Value))]
    pub data: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

/// A change pushed on the event stream: ids, keys and states only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "secret.upserted", rename_all = "camelCase")]
    SecretUpserted { workspace_id: Uuid, secret_id: Uuid, key: String },
    #[serde(rename = "secret.deleted", rename_all = "camelCase")]
    SecretDeleted { workspace_id: Uuid, secret_id: Uuid },
    #[serde(rename = "workflow.updated", rename_all = "camelCase")]
    WorkflowUpdated { workspace_id: Uuid, workflow_id: Uuid, workflow: String, place: String, status: RunStatus },
}

impl Event {
    /// The workspace the event belongs to.
    pub fn workspace_id(&self) -> Uuid {
        match self {
            Event::SecretUpserted { workspace_id, .. }
            | Event::SecretDeleted { workspace_id, .. }
            | Event::WorkflowUpdated { workspace_id, .. } => *workspace_id,
        }
    }

    /// The event's type name, e.g. `secret.upserted`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::SecretUpserted { .. } => "secret.upserted",
            Event::SecretDeleted { .. } => "secret.deleted",
            Event::WorkflowUpdated { .. } => "workflow.updated",
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
    pub actor: String,
    pub action: String,
    pub key: Option<String>,
    pub detail: Option<String>,
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
