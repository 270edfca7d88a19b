//! What the Studio's live pages show, made on the server: times already formatted, run
//! documents already rendered, request contents already read. The islands that hydrate get
//! these as props and from their reads, so the browser needs no date formatting, markdown
//! parser or JSON walking (and its WASM none of their code).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{GlobalKey, RunStatus, SecretRequest, WorkspaceItem};

/// A time as the Studio shows it: RFC 3339 for `<time datetime>`, and minutes in UTC to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    pub iso: String,
    pub text: String,
}

#[cfg(feature = "ssr")]
impl From<chrono::DateTime<chrono::Utc>> for Moment {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        Moment { iso: at.to_rfc3339(), text: at.format("%Y-%m-%d %H:%M UTC").to_string() }
    }
}

/// A workspace page: the workspace and one page of its secrets, read in one server-function call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSecrets {
    pub workspace: WorkspaceItem,
    /// One page of the secrets that match the filter, by key.
    pub secrets: Vec<SecretRow>,
    /// Secrets in the workspace.
    pub total: usize,
    /// Secrets whose key matches the filter.
    pub matching: usize,
    /// This page, from 1; [`SECRETS_PAGE_SIZE`] secrets each.
    pub page: usize,
    /// The workspace's waiting secret requests, newest first.
    pub pending: Vec<PendingRequest>,
    /// The keys the server provides to every workspace (read-only here), by key.
    pub globals: Vec<GlobalKey>,
    /// Secrets deleted within the retention window, newest first (they can be restored).
    pub deleted: Vec<DeletedRow>,
}

/// Rows per page of the Studio's secrets table.
pub const SECRETS_PAGE_SIZE: usize = 100;

/// One row of the secrets table: a key, whether it has a value, and where `http_request` may
/// send it (none: nowhere). Never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRow {
    pub id: Uuid,
    pub key: String,
    pub has_value: bool,
    /// The version the row shows: an update or delete from it is refused if the secret changed since.
    pub version: i64,
    pub updated: Moment,
    pub hosts: Vec<String>,
}

/// A recently deleted secret, which can be restored by key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRow {
    pub key: String,
    pub deleted: Moment,
    pub deleted_by: String,
}

/// A waiting secret request as the workspace page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    pub run_id: Uuid,
    pub workflow: String,
    pub keys: Vec<String>,
}

/// A run as its page shows it: who asked and when in words, and its documents in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPageData {
    pub workspace_id: Uuid,
    pub run_id: Uuid,
    pub title: String,
    pub status: RunStatus,
    pub requested_by: String,
    pub requested_at: Moment,
    /// When an open run expires (`None`: never).
    pub expires: Option<Moment>,
    /// The run failed because nobody answered before it expired.
    pub expired: bool,
    pub documents: Vec<RunPart>,
}

/// One document of a run, ready to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunPart {
    /// A SecretRequestDocument; `open` while it is the question the waiting run asks (a form).
    Request { request: SecretRequest, open: bool },
    /// A markdown document, rendered to HTML on the server (raw HTML in it escaped).
    Markdown { html: String },
    /// What a sub-workflow reported.
    Result { message: String },
}

/// What a Studio form shows once after it worked: a sentence, and maybe a credential to copy now
/// (a created token, a webhook's signing secret, a generated password), never shown again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownOnce {
    pub message: String,
    pub secret: Option<String>,
}
