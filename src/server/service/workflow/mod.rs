//! A small persisted workflow runtime. A workflow is a Rust type with named places and
//! transitions: one initial transition from `start`, automatic transitions that run as soon as
//! their place is reached, and `wait` transitions fired from outside with a payload. Runs,
//! documents and history are rows; each transition is applied in one transaction, guarded by
//! the run's version so it happens at most once.

pub mod builtin;
mod callbacks;
mod engine;
mod reading;
mod submission;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::model::{DocumentKind, Event, RequestedKey, RunDocument, RunStatus, SecretRequest, WorkflowRun};
use crate::server::domain::Actor;
use crate::server::error::AppError;
use crate::server::service::events::EventHub;
use crate::server::service::secrets::SecretService;
use crate::server::store::runs::{self, RunRow};
use crate::server::store::{Db, Tx};
use builtin::Builtin;

/// Name of the place every run starts in.
pub const START: &str = "start";
/// Name of the place that completes a run.
pub const END: &str = "end";
/// What a parent hears when a secrets request it started completes.
pub const STORED_MESSAGE: &str = "Secrets have been stored securely by the user.";
/// Most keys one request may ask for.
pub const MAX_REQUESTED_KEYS: usize = 50;
/// The window of the per-workspace limit on starting runs, in seconds.
const RATE_WINDOW_SECS: i64 = 60;

/// The transitions of the built-in workflows. Names from outside (a route, a callback) are
/// parsed into one of these once; the engine never matches on a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionName {
    RequestSecrets,
    RequestSecretsFromUser,
    /// Submits a SecretRequestDocument form.
    SecretsSubmitted,
    ShowResult,
}

impl TransitionName {
    const ALL: [TransitionName; 4] = [
        TransitionName::RequestSecrets,
        TransitionName::RequestSecretsFromUser,
        TransitionName::SecretsSubmitted,
        TransitionName::ShowResult,
    ];

    /// The name the API and the history show.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionName::RequestSecrets => "requestSecrets",
            TransitionName::RequestSecretsFromUser => "requestSecretsFromUser",
            TransitionName::SecretsSubmitted => "secretsSubmitted",
            TransitionName::ShowResult => "showResult",
        }
    }

    /// The transition called `name`, if any workflow has one.
    pub fn parse(name: &str) -> Option<TransitionName> {
        TransitionName::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// What makes a transition happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The engine, as soon as the run reaches its place.
    Automatic,
    /// A call from outside with a payload for the run.
    Payload,
    /// A request form's values, stored as secrets in the same transaction.
    Form,
}

/// One edge of a workflow.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub name: TransitionName,
    pub from: &'static str,
    pub to: &'static str,
    pub trigger: Trigger,
}

impl Transition {
    /// Whether the run waits at `from` for this transition to be fired from outside.
    pub fn waits(&self) -> bool {
        self.trigger != Trigger::Automatic
    }
}

/// What a transition body may read and write while its transaction is open.
pub struct Step<'a> {
    pub tx: &'a mut Tx,
    /// The workspace's secrets, with the operator's global values beneath them.
    pub secrets: &'a crate::server::service::secrets::SecretService,
    pub run: &'a RunRow,
    pub args: &'a Value,
    pub state: &'a mut Value,
    pub payload: &'a Value,
    pub documents: Vec<(DocumentKind, Value)>,
    pub result: Option<Value>,
}

impl Step<'_> {
    /// Shows a document on the run.
    pub fn save_document(&mut self, kind: DocumentKind, content: Value) {
        self.documents.push((kind, content));
    }
}

/// Options of a new run.
#[derive(Default)]
pub struct StartOptions {
    pub parent: Option<Uuid>,
    pub callback: Option<String>,
    pub expires_in_seconds: Option<i64>,
}

/// Starts, advances, fires, cancels and expires runs; emits `workflow.updated` events.
#[derive(Clone)]
pub struct WorkflowEngine {
    db: Db,
    secrets: SecretService,
    events: EventHub,
    runs_per_minute: u32,
    /// Status answers kept while they hold (see [`WorkflowEngine::view_json`]).
    answers: Arc<reading::KeptAnswers>,
}

impl WorkflowEngine {
    /// An engine over `db`, storing submitted values through `secrets`; each workspace may
    /// start `runs_per_minute` runs a minute.
    pub fn new(db: Db, secrets: SecretService, events: EventHub, runs_per_minute: u32) -> WorkflowEngine {
        WorkflowEngine { db, secrets, events, runs_per_minute, answers: Arc::default() }
    }
}

struct Outcome {
    event: Event,
    parent: Option<ParentNote>,
}

struct ParentNote {
    workspace_id: Uuid,
    id: Uuid,
    workflow: String,
    place: String,
    status: RunStatus,
    callback: Option<String>,
    content: Value,
}

fn builtin_of(run: &RunRow) -> Result<Builtin, AppError> {
    Builtin::parse(&run.workflow)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("run {} has unknown workflow '{}'", run.id, run.workflow)))
}
