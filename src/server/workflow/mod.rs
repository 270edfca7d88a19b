//! A small persisted workflow runtime. A workflow is a Rust type with named places and
//! transitions: one initial transition from `start`, automatic transitions that run as soon as
//! their place is reached, and `wait` transitions fired from outside with a payload. Runs,
//! documents and history are rows; each transition is applied in one transaction, guarded by
//! the run's version so it happens at most once.

pub mod builtin;
pub mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::model::{Event, RequestedKey, RunDocument, RunStatus, SecretRequest, WorkflowRun};
use crate::server::db::{Db, Tx};
use crate::server::error::AppError;
use crate::server::events::EventHub;
use crate::server::secrets::{Actor, SecretService};
use builtin::Builtin;
use store::RunRow;

/// Name of the place every run starts in.
pub const START: &str = "start";
/// Name of the place that completes a run.
pub const END: &str = "end";
/// The transition that submits a SecretRequestDocument form.
pub const SECRETS_SUBMITTED: &str = "secretsSubmitted";
/// Document kind of a secret request form.
pub const SECRET_REQUEST_DOCUMENT: &str = "SecretRequestDocument";
/// What a parent hears when a secrets request it started completes.
pub const STORED_MESSAGE: &str = "Secrets have been stored securely by the user.";
/// Most keys one request may ask for.
pub const MAX_REQUESTED_KEYS: usize = 50;
/// The window of the per-workspace limit on starting runs, in seconds.
const RATE_WINDOW_SECS: i64 = 60;

/// One edge of a workflow.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub name: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    /// Fired from outside (with a payload) instead of running by itself.
    pub wait: bool,
}

/// What a transition body may read and write while its transaction is open.
pub struct Step<'a> {
    pub tx: &'a mut Tx,
    pub run: &'a RunRow,
    pub args: &'a Value,
    pub state: &'a mut Value,
    pub payload: &'a Value,
    pub documents: Vec<(String, Value)>,
    pub result: Option<Value>,
}

impl Step<'_> {
    /// Shows a document on the run.
    pub fn save_document(&mut self, kind: &str, content: Value) {
        self.documents.push((kind.to_string(), content));
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
}

impl WorkflowEngine {
    /// An engine over `db`, storing submitted values through `secrets`; each workspace may
    /// start `runs_per_minute` runs a minute.
    pub fn new(db: Db, secrets: SecretService, events: EventHub, runs_per_minute: u32) -> WorkflowEngine {
        WorkflowEngine { db, secrets, events, runs_per_minute }
    }

    /// Starts a run of `workflow` and advances it until it waits or ends.
    #[tracing::instrument(skip(self, args, options, actor), err)]
    pub async fn start(
        &self,
        workspace_id: Uuid,
        workflow: &str,
        args: Value,
        options: StartOptions,
        actor: &Actor,
    ) -> Result<WorkflowRun, AppError> {
        let kind =
            Builtin::parse(workflow).ok_or_else(|| AppError::BadRequest(format!("unknown workflow '{workflow}'")))?;
        let args = kind.parse_args(&args, self.secrets.limits())?;
        if let Some(parent) = options.parent {
            store::run(&self.db, workspace_id, parent)
                .await?
                .ok_or_else(|| AppError::BadRequest("the parent run does not exist in this workspace".into()))?;
        }
        let expires_at = match options.expires_in_seconds {
            Some(secs) if !(1..=30 * 24 * 3600).contains(&secs) => {
                return Err(AppError::BadRequest("expiresInSeconds must be between 1 and 2592000".into()))
            }
            Some(secs) => Some(Utc::now() + chrono::Duration::seconds(secs)),
            None => None,
        };
        let now = Utc::now();
        let row = RunRow {
            id: Uuid::new_v4(),
            workspace_id,
            workflow: kind.name().to_string(),
            place: START.to_string(),
            status: RunStatus::Running.as_str().to_string(),
            args: args.to_string(),
            state: "{}".to_string(),
            result: None,
            parent_id: options.parent,
            callback: options.callback,
            expires_at,
            version: 0,
            created_by: actor.0.clone(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.db.begin().await?;
        self.check_rate(&mut tx, workspace_id, now).await?;
        store::insert_run(&mut tx, &row).await?;
        tx.commit().await?;
        self.advance(row.id).await?;
        self.view(workspace_id, row.id).await
    }

    /// Refuses a start past the workspace's runs per minute (a sliding window over the runs
    /// table, so instances sharing a database share the limit), with the seconds until the
    /// oldest start in the window leaves it.
    async fn check_rate(&self, tx: &mut Tx, workspace_id: Uuid, now: DateTime<Utc>) -> Result<(), AppError> {
        let window = chrono::Duration::seconds(RATE_WINDOW_SECS);
        let (started, oldest) = store::runs_started_since(tx, workspace_id, now - window).await?;
        if started < i64::from(self.runs_per_minute) {
            return Ok(());
        }
        let free_at = oldest.unwrap_or(now) + window;
        Err(AppError::TooManyRequests((free_at - now).num_seconds().clamp(1, RATE_WINDOW_SECS) as u64))
    }

    /// Runs automatic transitions while the run is `running` (also used to resume runs after
    /// a restart).
    pub async fn advance(&self, id: Uuid) -> Result<(), AppError> {
        loop {
            let mut tx = self.db.begin().await?;
            let Some(run) = store::run_in(&mut tx, id).await? else { return Ok(()) };
            if run.status()? != RunStatus::Running {
                return Ok(());
            }
            let kind = builtin_of(&run)?;
            let Some(transition) = kind.transitions().iter().find(|t| t.from == run.place && !t.wait).copied() else {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "run {id} is running at '{}' with no automatic transition",
                    run.place
                )));
            };
            let outcome = match self.apply(&mut tx, &run, kind, transition, &json!({}), &Actor("system".into())).await {
                Ok(outcome) => outcome,
                // Another instance resuming runs moved it first: read it again.
                Err(AppError::Conflict(_)) => continue,
                Err(err) => return Err(err),
            };
            tx.commit().await?;
            self.after_commit(outcome).await;
        }
    }

    /// Fires a `wait` transition from outside. `secretsSubmitted` stores the submitted values
    /// in the same transaction: all or nothing, and the stored payload keeps keys only.
    #[tracing::instrument(skip(self, payload, actor), err)]
    pub async fn fire(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        transition: &str,
        payload: Value,
        actor: &Actor,
    ) -> Result<WorkflowRun, AppError> {
        let run = store::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        let kind = builtin_of(&run)?;
        let Some(edge) = kind.transitions().iter().find(|t| t.name == transition && t.wait).copied() else {
            return Err(AppError::BadRequest(format!(
                "'{transition}' is not a transition of {} that can be fired",
                kind.name()
            )));
        };
        let mut tx = self.db.begin().await?;
        let current = store::run_in(&mut tx, id).await?.ok_or(AppError::NotFound)?;
        let status = current.status()?;
        if status != RunStatus::Waiting || current.place != edge.from {
            return Err(AppError::Conflict(format!(
                "the run is {} at '{}'; '{transition}' is not available",
                status.as_str(),
                current.place
            )));
        }
        if !store::claim_run(&mut tx, id, current.version).await? {
            return Err(AppError::Conflict("the run has already moved on".into()));
        }
        let mut secret_events = Vec::new();
        let recorded = if transition == SECRETS_SUBMITTED {
            let sealer = self.secrets.sealer(&mut tx, workspace_id).await?;
            let (keys, events) = self.store_submission(&mut tx, &sealer, &current, payload, actor).await?;
            let detail = format!("request {id}: {} value(s)", events.len());
            let entry = crate::server::store::Audit {
                workspace_id: Some(workspace_id),
                actor: &actor.0,
                action: "request.submitted",
                key: None,
                detail: Some(&detail),
            };
            crate::server::store::audit_in(&mut tx, &entry).await?;
            secret_events = events;
            keys
        } else {
            payload
        };
        let outcome = self.apply(&mut tx, &current, kind, edge, &recorded, actor).await?;
        tx.commit().await?;
        self.events.publish(secret_events).await;
        self.after_commit(outcome).await;
        self.advance(id).await?;
        self.view(workspace_id, id).await
    }

    /// Cancels (or declines) an open run.
    #[tracing::instrument(skip(self, actor), err)]
    pub async fn cancel(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        reason: &str,
        actor: &Actor,
    ) -> Result<WorkflowRun, AppError> {
        let run = store::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        self.close(&run, RunStatus::Cancelled, json!({"success": false, "cancelled": true, "reason": reason}), actor)
            .await?;
        self.view(workspace_id, id).await
    }

    /// Fails every waiting run whose expiry has passed; returns how many.
    pub async fn expire_due(&self) -> Result<usize, AppError> {
        let due = store::expired_ids(&self.db, Utc::now()).await?;
        let mut expired = 0;
        for (workspace_id, id) in due {
            let Some(run) = store::run(&self.db, workspace_id, id).await? else { continue };
            let result = json!({"success": false, "expired": true, "message": "The request expired before the secrets were provided."});
            match self.close(&run, RunStatus::Failed, result, &Actor("system".into())).await {
                Ok(()) => expired += 1,
                Err(AppError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(expired)
    }

    /// Resumes runs that were moving when the process stopped, then expires due requests every
    /// second, for as long as the process runs.
    pub fn start_background(&self) -> tokio::task::AbortHandle {
        let engine = self.clone();
        let task = tokio::spawn(async move {
            match store::running_ids(&engine.db).await {
                Ok(ids) => {
                    for id in ids {
                        if let Err(err) = engine.advance(id).await {
                            tracing::warn!(error = %err, %id, "failed to resume a run");
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "failed to list runs to resume"),
            }
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(err) = engine.expire_due().await {
                    tracing::warn!(error = %err, "failed to expire requests");
                }
            }
        });
        task.abort_handle()
    }

    /// A run with its documents and available transitions.
    pub async fn view(&self, workspace_id: Uuid, id: Uuid) -> Result<WorkflowRun, AppError> {
        let run = store::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        self.to_view(run).await
    }

    /// A workspace's runs, newest first, optionally with one status (`waiting`: the pending
    /// requests).
    pub async fn list(&self, workspace_id: Uuid, status: Option<RunStatus>) -> Result<Vec<WorkflowRun>, AppError> {
        let status = status.map(RunStatus::as_str);
        let rows = store::runs(&self.db, workspace_id, status, LIST_LIMIT).await?;
        // The documents of all listed runs in one query, not one per run.
        let mut documents = store::documents_of_runs(&self.db, workspace_id, status, LIST_LIMIT).await?;
        rows.into_iter()
            .map(|row| {
                let docs = documents.remove(&row.id).unwrap_or_default();
                view_of(row, docs)
            })
            .collect()
    }

    /// Waits until the run changes (or is already closed), at most `timeout`. Returns the run
    /// and whether it changed while waiting.
    pub async fn wait(&self, workspace_id: Uuid, id: Uuid, timeout: Duration) -> Result<(WorkflowRun, bool), AppError> {
        let mut events = self.events.subscribe();
        let start = store::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        if !start.status()?.is_open() {
            return Ok((self.to_view(start).await?, true));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv()).await;
            // Events about anything else do not wake a database read: with many waiters and
            // busy workspaces that would be one query per waiter per event. A lagged receiver
            // may have missed this run's event, so it reads.
            if let Ok(Ok(other)) = &event {
                if !matches!(other, Event::WorkflowUpdated { workflow_id, .. } if *workflow_id == id) {
                    continue;
                }
            }
            let current = store::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
            let changed = current.version != start.version;
            let timed_out = event.is_err();
            if changed || timed_out {
                return Ok((self.to_view(current).await?, changed));
            }
        }
    }

    async fn to_view(&self, run: RunRow) -> Result<WorkflowRun, AppError> {
        let documents = store::documents(&self.db, run.id).await?;
        view_of(run, documents)
    }

    /// Applies one transition inside `tx`: runs its body, moves the run, saves documents and
    /// history. A concurrent change makes it a 409 (the caller's transaction rolls back).
    async fn apply(
        &self,
        tx: &mut Tx,
        run: &RunRow,
        kind: Builtin,
        edge: Transition,
        payload: &Value,
        actor: &Actor,
    ) -> Result<Outcome, AppError> {
        let args = parse_json(&run.args)?;
        let mut state = parse_json(&run.state)?;
        let mut step = Step { tx, run, args: &args, state: &mut state, payload, documents: Vec::new(), result: None };
        kind.execute(edge.name, &mut step).await?;
        let Step { documents, result, .. } = step;
        let status = if edge.to == END {
            RunStatus::Completed
        } else if kind.transitions().iter().any(|t| t.from == edge.to && !t.wait) {
            RunStatus::Running
        } else {
            RunStatus::Waiting
        };
        let result = if status == RunStatus::Completed { Some(result.unwrap_or_else(|| json!({}))) } else { None };
        let result_text = result.as_ref().map(Value::to_string);
        if !store::update_run(tx, run.id, run.version, edge.to, status, &state.to_string(), result_text.as_deref())
            .await?
        {
            return Err(AppError::Conflict("the run has already moved on".into()));
        }
        for (doc_kind, content) in &documents {
            store::insert_document(tx, run.id, doc_kind, &content.to_string()).await?;
        }
        store::insert_transition(
            tx,
            run.id,
            run.version + 1,
            edge.name,
            &run.place,
            edge.to,
            &payload.to_string(),
            &actor.0,
        )
        .await?;
        let parent_note = match (status, run.parent_id) {
            (RunStatus::Completed, Some(parent)) => Some(self.notify_parent(tx, run, parent, result.as_ref()).await?),
            _ => None,
        };
        Ok(Outcome {
            event: Event::WorkflowUpdated {
                workspace_id: run.workspace_id,
                workflow_id: run.id,
                workflow: run.workflow.clone(),
                place: edge.to.to_string(),
                status,
            },
            parent: parent_note,
        })
    }

    /// The callback to a parent run: a TaskResult document on the parent, in the child's
    /// transaction. When the parent waits on the named callback transition, it is fired after
    /// the commit.
    async fn notify_parent(
        &self,
        tx: &mut Tx,
        child: &RunRow,
        parent_id: Uuid,
        result: Option<&Value>,
    ) -> Result<ParentNote, AppError> {
        let content = json!({
            "workflowId": child.id,
            "workflow": child.workflow,
            "message": STORED_MESSAGE,
            "result": result,
        });
        store::insert_document(tx, parent_id, "TaskResult", &content.to_string()).await?;
        let parent = store::run_in(tx, parent_id).await?.ok_or(AppError::NotFound)?;
        let status = parent.status()?;
        Ok(ParentNote {
            workspace_id: parent.workspace_id,
            id: parent_id,
            workflow: parent.workflow,
            place: parent.place,
            status,
            callback: child.callback.clone(),
            content,
        })
    }

    async fn after_commit(&self, outcome: Outcome) {
        let mut events = vec![outcome.event];
        if let Some(parent) = &outcome.parent {
            events.push(Event::WorkflowUpdated {
                workspace_id: parent.workspace_id,
                workflow_id: parent.id,
                workflow: parent.workflow.clone(),
                place: parent.place.clone(),
                status: parent.status,
            });
        }
        self.events.publish(events).await;
        if let Some(ParentNote {
            workspace_id,
            id,
            callback: Some(callback),
            content,
            status: RunStatus::Waiting,
            ..
        }) = outcome.parent
        {
            let fired = Box::pin(self.fire(workspace_id, id, &callback, content, &Actor("system".into()))).await;
            if let Err(err) = fired {
                tracing::info!(error = %err, parent = %id, "the parent run did not take the callback transition");
            }
        }
    }

    /// Closes an open run with `status` and `result`.
    async fn close(&self, run: &RunRow, status: RunStatus, result: Value, actor: &Actor) -> Result<(), AppError> {
        if !run.status()?.is_open() {
            return Err(AppError::Conflict(format!("the run is already {}", run.status)));
        }
        let mut tx = self.db.begin().await?;
        if !store::update_run(&mut tx, run.id, run.version, &run.place, status, &run.state, Some(&result.to_string()))
            .await?
        {
            return Err(AppError::Conflict("the run has already moved on".into()));
        }
        store::insert_transition(
            &mut tx,
            run.id,
            run.version + 1,
            status.as_str(),
            &run.place,
            &run.place,
            "{}",
            &actor.0,
        )
        .await?;
        let action = if status == RunStatus::Cancelled { "request.cancelled" } else { "request.expired" };
        let detail = format!("request {}", run.id);
        let entry = crate::server::store::Audit {
            workspace_id: Some(run.workspace_id),
            actor: &actor.0,
            action,
            key: None,
            detail: Some(&detail),
        };
        crate::server::store::audit_in(&mut tx, &entry).await?;
        tx.commit().await?;
        let event = Event::WorkflowUpdated {
            workspace_id: run.workspace_id,
            workflow_id: run.id,
            workflow: run.workflow.clone(),
            place: run.place.clone(),
            status,
        };
        self.events.publish(vec![event]).await;
        Ok(())
    }

    /// Parses a form submission, checks every key was requested, stores every value inside
    /// `tx` and returns the payload to record (keys only) and the events to publish.
    async fn store_submission(
        &self,
        tx: &mut Tx,
        sealer: &crate::server::secrets::Sealer,
        run: &RunRow,
        payload: Value,
        actor: &Actor,
    ) -> Result<(Value, Vec<Event>), AppError> {
        let submission: Submission = serde_json::from_value(payload).map_err(|e| {
            AppError::BadRequest(format!(
                "invalid submission: {}",
                crate::server::rest::extract::without_string_literals(&e.to_string())
            ))
        })?;
        let requested = requested_keys(tx, run).await?;
        let mut seen = std::collections::HashSet::new();
        let mut parsed = Vec::with_capacity(submission.variables.len());
        for variable in submission.variables {
            let key = self.secrets.parse_key(&variable.key)?;
            if !requested.contains(key.as_str()) {
                return Err(AppError::BadRequest(format!("'{key}' was not requested")));
            }
            if !seen.insert(key.clone()) {
                return Err(AppError::BadRequest(format!("'{key}' was submitted twice")));
            }
            parsed.push((key, self.secrets.parse_value(variable.value)?));
        }
        if parsed.is_empty() {
            return Err(AppError::BadRequest("submit at least one value".into()));
        }
        let mut events = Vec::with_capacity(parsed.len());
        let detail = format!("submitted to request {}", run.id);
        for (key, value) in &parsed {
            let item = self.secrets.upsert_in(tx, sealer, key, value, actor, Some(&detail)).await?;
            events.push(Event::SecretUpserted { workspace_id: run.workspace_id, secret_id: item.id, key: item.key });
        }
        let keys: Vec<RequestedKey> =
            parsed.iter().map(|(key, _)| RequestedKey { key: key.as_str().to_string() }).collect();
        Ok((json!({ "variables": keys }), events))
    }
}

/// The run's requested keys: those of its latest SecretRequestDocument.
async fn requested_keys(tx: &mut Tx, run: &RunRow) -> Result<std::collections::HashSet<String>, AppError> {
    let content = store::latest_document_in(tx, run.id, SECRET_REQUEST_DOCUMENT)
        .await?
        .ok_or_else(|| AppError::Conflict("this run has no secret request".into()))?;
    let request: SecretRequest = serde_json::from_str(&content)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored request is invalid: {e}")))?;
    Ok(request.variables.into_iter().map(|v| v.key).collect())
}

/// The body of `secretsSubmitted`: the SecretRequestDocument shape with values.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    variables: Vec<SubmittedVariable>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmittedVariable {
    key: String,
    value: String,
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

fn parse_json(text: &str) -> Result<Value, AppError> {
    serde_json::from_str(text).map_err(|e| AppError::Internal(anyhow::anyhow!("stored JSON is invalid: {e}")))
}

/// Runs a list answers with at most.
const LIST_LIMIT: i64 = 200;

/// A run as the API shows it, with its documents.
fn view_of(run: RunRow, documents: Vec<RunDocument>) -> Result<WorkflowRun, AppError> {
    let status = run.status()?;
    let transitions = if status == RunStatus::Waiting {
        builtin_of(&run)?
            .transitions()
            .iter()
            .filter(|t| t.wait && t.from == run.place)
            .map(|t| t.name.to_string())
            .collect()
    } else {
        Vec::new()
    };
    Ok(WorkflowRun {
        id: run.id,
        workspace_id: run.workspace_id,
        workflow: run.workflow,
        place: run.place,
        status,
        args: parse_json(&run.args)?,
        result: run.result.as_deref().map(parse_json).transpose()?,
        parent_id: run.parent_id,
        callback: run.callback,
        expires_at: run.expires_at,
        created_at: run.created_at,
        updated_at: run.updated_at,
        transitions,
        documents,
    })
}
