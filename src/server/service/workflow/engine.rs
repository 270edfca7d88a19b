//! The engine's moves: starting a run (within the workspace's rate), advancing it through its
//! automatic transitions, firing a waiting transition, cancelling, expiring, and what happens
//! after each commit (the event, the parent's callback).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::server::domain::{AuditAction, Submission};

impl WorkflowEngine {
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
            runs::run(&self.db, workspace_id, parent)
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
            status: RunStatus::Running,
            args,
            state: json!({}),
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
        runs::insert_run(&mut tx, &row).await?;
        tx.commit().await?;
        self.advance(row.id).await?;
        self.view(workspace_id, row.id).await
    }

    /// Refuses a start past the workspace's runs per minute (a sliding window over the runs
    /// table, so instances sharing a database share the limit), with the seconds until the
    /// oldest start in the window leaves it.
    async fn check_rate(&self, tx: &mut Tx, workspace_id: Uuid, now: DateTime<Utc>) -> Result<(), AppError> {
        let window = chrono::Duration::seconds(RATE_WINDOW_SECS);
        let (started, oldest) = runs::runs_started_since(tx, workspace_id, now - window).await?;
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
            let Some(run) = runs::run_by_id(&mut tx, id).await? else { return Ok(()) };
            if run.status != RunStatus::Running {
                return Ok(());
            }
            let kind = builtin_of(&run)?;
            let Some(transition) = kind.transitions().iter().find(|t| t.from == run.place && !t.waits()).copied()
            else {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "run {id} is running at '{}' with no automatic transition",
                    run.place
                )));
            };
            let outcome = match self.apply(&mut tx, &run, kind, transition, &json!({}), &Actor::system()).await {
                Ok(outcome) => outcome,
                // Another instance resuming runs moved it first: read it again.
                Err(AppError::Conflict(_)) => continue,
                Err(err) => return Err(err),
            };
            self.events.commit(tx, outcome.events()).await?;
            self.after_commit(outcome).await;
        }
    }

    /// Fires a waiting transition from outside with a payload for the run. A request form's
    /// values go through [`WorkflowEngine::submit`] instead.
    #[tracing::instrument(skip(self, payload, actor), err)]
    pub async fn fire(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        transition: &str,
        payload: Value,
        actor: &Actor,
    ) -> Result<WorkflowRun, AppError> {
        self.fire_with(workspace_id, id, transition, Firing::Payload(payload), actor).await
    }

    /// Submits a request form: every value is stored and `secretsSubmitted` fires in the same
    /// transaction, all or nothing; the recorded payload keeps the keys only.
    #[tracing::instrument(skip(self, submission, actor), err)]
    pub async fn submit(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        submission: Submission,
        actor: &Actor,
    ) -> Result<WorkflowRun, AppError> {
        let name = TransitionName::SecretsSubmitted.as_str();
        self.fire_with(workspace_id, id, name, Firing::Values(submission), actor).await
    }

    pub(super) async fn fire_with(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        transition: &str,
        firing: Firing,
        actor: &Actor,
    ) -> Result<WorkflowRun, AppError> {
        let run = runs::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        let kind = builtin_of(&run)?;
        let name = TransitionName::parse(transition);
        let Some(edge) = kind.transitions().iter().find(|t| Some(t.name) == name && t.waits()).copied() else {
            return Err(AppError::BadRequest(format!(
                "'{transition}' is not a transition of {} that can be fired",
                kind.name()
            )));
        };
        match (edge.trigger, &firing) {
            (Trigger::Form, Firing::Payload(_)) => {
                return Err(AppError::BadRequest(format!("'{transition}' takes a request form's values")))
            }
            (Trigger::Payload, Firing::Values(_)) => {
                return Err(AppError::BadRequest(format!("'{transition}' takes a payload, not a form")))
            }
            _ => {}
        }
        let mut tx = self.db.begin().await?;
        let current = runs::run_by_id(&mut tx, id).await?.ok_or(AppError::NotFound)?;
        let status = current.status;
        if status != RunStatus::Waiting || current.place != edge.from {
            return Err(AppError::Conflict(format!(
                "the run is {} at '{}'; '{transition}' is not available",
                status.as_str(),
                current.place
            )));
        }
        if !runs::claim_run(&mut tx, id, current.version).await? {
            return Err(AppError::Conflict("the run has already moved on".into()));
        }
        let mut secret_events = Vec::new();
        let recorded = match firing {
            Firing::Values(submission) => {
                let sealer = self.secrets.sealer(&mut tx, workspace_id).await?;
                let (keys, events) = self.store_submission(&mut tx, &sealer, &current, submission, actor).await?;
                let detail = format!("request {id}: {} value(s)", events.len());
                let entry = crate::server::store::Audit {
                    workspace_id: Some(workspace_id),
                    actor: &actor.0,
                    action: AuditAction::RequestSubmitted,
                    key: None,
                    detail: Some(&detail),
                    run_id: Some(id),
                };
                crate::server::store::audit(&mut tx, &entry).await?;
                secret_events = events;
                keys
            }
            Firing::Payload(payload) => payload,
        };
        let outcome = self.apply(&mut tx, &current, kind, edge, &recorded, actor).await?;
        secret_events.extend(outcome.events());
        self.events.commit(tx, secret_events).await?;
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
        let run = runs::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        self.close(&run, RunStatus::Cancelled, json!({"success": false, "cancelled": true, "reason": reason}), actor)
            .await?;
        self.view(workspace_id, id).await
    }

    /// Fails every waiting run whose expiry has passed; returns how many.
    pub async fn expire_due(&self) -> Result<usize, AppError> {
        let due = runs::expired_ids(&self.db, Utc::now()).await?;
        let mut expired = 0;
        for (workspace_id, id) in due {
            let Some(run) = runs::run(&self.db, workspace_id, id).await? else { continue };
            let result = json!({"success": false, "expired": true, "message": "The request expired before the secrets were provided."});
            match self.close(&run, RunStatus::Failed, result, &Actor::system()).await {
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
            match runs::running_ids(&engine.db).await {
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
        let mut state = run.state.clone();
        let mut step = Step {
            tx,
            secrets: &self.secrets,
            run,
            args: &run.args,
            state: &mut state,
            payload,
            documents: Vec::new(),
            result: None,
        };
        kind.execute(edge.name, &mut step).await?;
        let Step { documents, result, .. } = step;
        let status = if edge.to == END {
            RunStatus::Completed
        } else if kind.transitions().iter().any(|t| t.from == edge.to && !t.waits()) {
            RunStatus::Running
        } else {
            RunStatus::Waiting
        };
        let result = if status == RunStatus::Completed { Some(result.unwrap_or_else(|| json!({}))) } else { None };
        if !runs::update_run(tx, run.id, run.version, edge.to, status, &state, result.as_ref()).await? {
            return Err(AppError::Conflict("the run has already moved on".into()));
        }
        for (doc_kind, content) in &documents {
            runs::insert_document(tx, run.id, *doc_kind, &content.to_string()).await?;
        }
        runs::insert_transition(
            tx,
            run.id,
            run.version + 1,
            edge.name.as_str(),
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

    /// Closes an open run with `status` and `result`.
    async fn close(&self, run: &RunRow, status: RunStatus, result: Value, actor: &Actor) -> Result<(), AppError> {
        if !run.status.is_open() {
            return Err(AppError::Conflict(format!("the run is already {}", run.status.as_str())));
        }
        let mut tx = self.db.begin().await?;
        if !runs::update_run(&mut tx, run.id, run.version, &run.place, status, &run.state, Some(&result)).await? {
            return Err(AppError::Conflict("the run has already moved on".into()));
        }
        runs::insert_transition(
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
        let action =
            if status == RunStatus::Cancelled { AuditAction::RequestCancelled } else { AuditAction::RequestExpired };
        let detail = format!("request {}", run.id);
        let entry = crate::server::store::Audit {
            workspace_id: Some(run.workspace_id),
            actor: &actor.0,
            action,
            key: None,
            detail: Some(&detail),
            run_id: Some(run.id),
        };
        crate::server::store::audit(&mut tx, &entry).await?;
        let event = Event::WorkflowUpdated {
            workspace_id: run.workspace_id,
            workflow_id: run.id,
            workflow: run.workflow.clone(),
            place: run.place.clone(),
            status,
        };
        self.events.commit(tx, vec![event]).await?;
        Ok(())
    }
}

/// What firing a transition carries.
pub(super) enum Firing {
    /// Data for the run (the transition's payload, recorded as it is).
    Payload(Value),
    /// A request form's values (stored as secrets; only the keys are recorded).
    Values(Submission),
}
