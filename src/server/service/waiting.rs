//! Where a secret request stands, and waiting for it: what `wait_for_secrets` answers on the
//! tool API and the MCP server, and what an MCP retry after an elicitation reports. Keys and
//! states only, never a value.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{DocumentKind, RunStatus, WorkflowRun};
use crate::server::error::AppError;
use crate::server::service::workflow::{WorkflowEngine, STORED_MESSAGE};

/// The longest one `wait_for_secrets` call waits, in seconds.
pub const MAX_WAIT_SECS: u64 = 120;
/// How long a call waits when it names no timeout, in seconds.
pub const DEFAULT_WAIT_SECS: u64 = 60;
/// The longest stretch a wait goes without a heartbeat (progress, a credential check).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Where a secret request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// The person has not answered yet.
    Pending,
    /// The values are stored.
    Completed,
    /// The person (or the caller) declined it.
    Declined,
    /// It expired unanswered.
    Expired,
}

/// A secret request as an agent sees it: its run, its state and, once completed, its keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOutcome {
    pub status: RequestStatus,
    pub workflow_id: Uuid,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

impl RequestOutcome {
    /// Where `run` stands.
    pub fn of(run: &WorkflowRun) -> RequestOutcome {
        let status = match run.status {
            RunStatus::Running | RunStatus::Waiting => RequestStatus::Pending,
            RunStatus::Completed => RequestStatus::Completed,
            RunStatus::Cancelled => RequestStatus::Declined,
            RunStatus::Failed => RequestStatus::Expired,
        };
        let keys = if status == RequestStatus::Completed { requested_keys(run) } else { Vec::new() };
        RequestOutcome { status, workflow_id: run.id, keys }
    }

    /// A short sentence for a model.
    pub fn text(&self) -> String {
        match self.status {
            RequestStatus::Completed => STORED_MESSAGE.to_string(),
            RequestStatus::Declined => "The user declined the request; no secrets were stored.".to_string(),
            RequestStatus::Expired => "The request expired before the secrets were provided.".to_string(),
            RequestStatus::Pending => format!(
                "The user has not provided the secrets yet. Call wait_for_secrets with workflowId {} to keep waiting.",
                self.workflow_id
            ),
        }
    }

    /// The outcome as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("BUG: an outcome serializes")
    }
}

/// The keys a request asked for (from its form document).
fn requested_keys(run: &WorkflowRun) -> Vec<String> {
    run.documents
        .iter()
        .filter(|d| d.kind == DocumentKind::SecretRequestDocument)
        .flat_map(|d| d.content["variables"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["key"].as_str().map(str::to_string))
        .collect()
}

/// What a long wait does at least every [`HEARTBEAT`]: report progress to the caller, check
/// that its credential still holds (an error ends the wait with that error).
pub trait Heartbeat: Send {
    fn beat(&mut self, waited: Duration, limit: Duration) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// A heartbeat that does nothing (a local caller with nothing to report to).
pub struct Quiet;

impl Heartbeat for Quiet {
    async fn beat(&mut self, _waited: Duration, _limit: Duration) -> Result<(), AppError> {
        Ok(())
    }
}

/// Arguments of `wait_for_secrets`: `{workflowId, timeoutSeconds?}`, strict.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitArgs {
    pub workflow_id: Uuid,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

impl WaitArgs {
    /// Parses the arguments; a timeout over [`MAX_WAIT_SECS`] is a 400.
    pub fn parse(args: Value) -> Result<WaitArgs, AppError> {
        let args: WaitArgs = serde_json::from_value(args).map_err(|e| {
            AppError::BadRequest(format!(
                "invalid arguments: {}",
                crate::server::error::without_string_literals(&e.to_string())
            ))
        })?;
        if args.timeout_seconds.is_some_and(|secs| secs > MAX_WAIT_SECS) {
            return Err(AppError::BadRequest(format!("timeoutSeconds must be at most {MAX_WAIT_SECS}")));
        }
        Ok(args)
    }

    /// How long to wait.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(DEFAULT_WAIT_SECS))
    }
}

/// Waits until the secret request `id` of `workspace_id` is answered, at most `limit`, with a
/// heartbeat at least every [`HEARTBEAT`]; 404 for a run of another workspace.
pub async fn wait_for_request(
    workflows: &WorkflowEngine,
    workspace_id: Uuid,
    id: Uuid,
    limit: Duration,
    heartbeat: &mut impl Heartbeat,
) -> Result<RequestOutcome, AppError> {
    let started = tokio::time::Instant::now();
    let deadline = started + limit;
    loop {
        let slice = deadline.saturating_duration_since(tokio::time::Instant::now()).min(HEARTBEAT);
        let (run, _) = workflows.wait(workspace_id, id, slice).await?;
        let outcome = RequestOutcome::of(&run);
        if outcome.status != RequestStatus::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(outcome);
        }
        heartbeat.beat(started.elapsed(), limit).await?;
    }
}
