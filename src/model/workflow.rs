//! Workflow runs, their documents, the agent tools and the event stream, as the REST JSON,
//! the server functions and the components share them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// A form asking a person for secret values (a [`SecretRequest`]).
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
    /// Who started the run (for a secret request: who asked).
    pub created_by: CreatedBy,
    pub updated_at: DateTime<Utc>,
    /// Transitions that can be fired from outside now (the run is waiting for them).
    pub transitions: Vec<String>,
    pub documents: Vec<RunDocument>,
}

/// One requested key of a SecretRequestDocument, with what the person asked should know
/// about it. Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestedKey {
    /// The key: it becomes an environment variable name.
    #[cfg_attr(feature = "ssr", schema(pattern = "^[A-Za-z_][A-Za-z0-9_]*$", min_length = 1, max_length = 200))]
    pub key: String,
    /// What the value is and where it comes from: plain text (a newline is the only control
    /// character allowed), at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(max_length = 500))]
    pub description: Option<String>,
    /// A page explaining how to get the value: an absolute `https://` URL with a host, at most
    /// 2000 characters. The Studio links to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(format = "uri", pattern = "^https://", max_length = 2000))]
    pub help_url: Option<String>,
}

impl RequestedKey {
    /// A key asked for without a description or a help link.
    pub fn new(key: impl Into<String>) -> RequestedKey {
        RequestedKey { key: key.into(), description: None, help_url: None }
    }
}

/// The content of a SecretRequestDocument, and the arguments of the request tools:
/// `{reason?, variables: [{key, description?, helpUrl?}]}`. Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRequest {
    /// Why the secrets are needed, shown to the person asked: plain text (a newline is the
    /// only control character allowed), at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(max_length = 500))]
    pub reason: Option<String>,
    /// The keys asked for: 1 to 50, each once.
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 50))]
    pub variables: Vec<RequestedKey>,
}

/// Who started a run, as the person answering a request reads it: a user by name, an API token
/// by the name its owner gave it (never the token), an operator's command, or the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CreatedBy {
    User {
        name: String,
    },
    /// `name` is absent when the token no longer exists.
    Token {
        name: Option<String>,
    },
    Cli,
    System,
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
    /// The tool's answer: `[SecretKeyState]` (`{key, hasValue, global}`, sorted by key) for
    /// `get_secret_keys`, `{variables: [{key}]}` for `request_secrets`, `{workflowId}` for
    /// `request_secrets_task`.
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
    #[serde(rename = "token.created", rename_all = "camelCase")]
    TokenCreated { workspace_id: Uuid, token_id: Uuid, name: String, scopes: Vec<String> },
    #[serde(rename = "token.revoked", rename_all = "camelCase")]
    TokenRevoked { workspace_id: Uuid, token_id: Uuid },
    /// A member added, given another role (`role`), or removed (`role: null`).
    #[serde(rename = "member.changed", rename_all = "camelCase")]
    MemberChanged { workspace_id: Uuid, user_id: Uuid, role: Option<crate::model::Role> },
}

impl Event {
    /// The workspace the event belongs to.
    pub fn workspace_id(&self) -> Uuid {
        match self {
            Event::SecretUpserted { workspace_id, .. }
            | Event::SecretDeleted { workspace_id, .. }
            | Event::WorkflowUpdated { workspace_id, .. }
            | Event::TokenCreated { workspace_id, .. }
            | Event::TokenRevoked { workspace_id, .. }
            | Event::MemberChanged { workspace_id, .. } => *workspace_id,
        }
    }

    /// The event's type name, e.g. `secret.upserted`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::SecretUpserted { .. } => "secret.upserted",
            Event::SecretDeleted { .. } => "secret.deleted",
            Event::WorkflowUpdated { .. } => "workflow.updated",
            Event::TokenCreated { .. } => "token.created",
            Event::TokenRevoked { .. } => "token.revoked",
            Event::MemberChanged { .. } => "member.changed",
        }
    }
}
