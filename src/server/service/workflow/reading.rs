//! Reading runs: one with its documents and who started it, a workspace's list (documents in
//! one query), and the long-poll that waits for a run to move.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::model::CreatedBy;
use crate::server::domain::leak::LeakGuard;
use crate::server::domain::ActorKind;
use crate::server::store::token_by_id;

impl WorkflowEngine {
    /// A run with its documents and available transitions: from memory while no move of it
    /// has been committed since it was read (status reads and polls read it again and again),
    /// through the leak guard each time.
    pub async fn view(&self, workspace_id: Uuid, id: Uuid) -> Result<WorkflowRun, AppError> {
        let mut view = WorkflowRun::clone(&*self.as_read(workspace_id, id).await?);
        self.guard(&mut view).await?;
        Ok(view)
    }

    /// [`WorkflowEngine::view`] as JSON text, for status reads. The text is kept with the run as
    /// read and the leak guard it went through, and served again while both are current (no
    /// move of the run, no change to the workspace's values), unless the guard masked
    /// something: that answer is made, and audited, on every call.
    pub async fn view_json(&self, workspace_id: Uuid, id: Uuid) -> Result<Arc<str>, AppError> {
        let run = self.as_read(workspace_id, id).await?;
        let guard = self.secrets.leak_guard(workspace_id).await?;
        if let Some(text) = self.answers.of(&run, &guard) {
            return Ok(text);
        }
        let mut view = WorkflowRun::clone(&run);
        let place = format!("run {}", view.id);
        let masked =
            self.secrets.mask_with(&guard, workspace_id, parts_of(&mut view), &place, &Actor::system()).await?;
        let text: Arc<str> = serde_json::to_string(&view).map_err(anyhow::Error::from)?.into();
        if !masked {
            self.answers.keep(run, guard, text.clone());
        }
        Ok(text)
    }

    /// A run as read, before the leak guard: from memory, or read and kept.
    async fn as_read(&self, workspace_id: Uuid, id: Uuid) -> Result<Arc<WorkflowRun>, AppError> {
        let cache = self.db.fresh_cache().await?;
        match cache.run(id) {
            Some(run) if run.workspace_id == workspace_id => Ok(run),
            Some(_) => Err(AppError::NotFound),
            None => {
                let ticket = cache.run_ticket();
                let run = runs::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
                let documents = runs::documents(&self.db, run.id).await?;
                let created_by = self.created_by(&run).await?;
                let view = Arc::new(view_of(run, documents, created_by)?);
                cache.store_run(ticket, view.clone());
                Ok(view)
            }
        }
    }

    /// A workspace's runs, newest first, optionally with one status (`waiting`: the pending
    /// requests).
    pub async fn list(&self, workspace_id: Uuid, status: Option<RunStatus>) -> Result<Vec<WorkflowRun>, AppError> {
        let status = status.map(RunStatus::as_str);
        let rows = runs::runs(&self.db, workspace_id, status, LIST_LIMIT).await?;
        // The documents of all listed runs in one query, not one per run.
        let mut documents = runs::documents_of_runs(&self.db, workspace_id, status, LIST_LIMIT).await?;
        // Each token that started runs is looked up once.
        let mut creators: HashMap<String, CreatedBy> = HashMap::new();
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let created_by = match creators.get(&row.created_by) {
                Some(known) => known.clone(),
                None => {
                    let found = self.created_by(&row).await?;
                    creators.insert(row.created_by.clone(), found.clone());
                    found
                }
            };
            let docs = documents.remove(&row.id).unwrap_or_default();
            views.push(view_of(row, docs, created_by)?);
        }
        let mut parts: Vec<&mut Value> = Vec::new();
        for view in &mut views {
            parts.push(&mut view.args);
            parts.extend(view.result.as_mut());
            parts.extend(view.documents.iter_mut().map(|d| &mut d.content));
        }
        self.secrets.mask_all(workspace_id, parts, "runs list", &Actor::system()).await?;
        Ok(views)
    }

    /// Who started `run`, by name: a token's is looked up (a token of another workspace, which
    /// cannot have started it, is not named).
    async fn created_by(&self, run: &RunRow) -> Result<CreatedBy, AppError> {
        Ok(match Actor(run.created_by.clone()).kind() {
            ActorKind::User(name) => CreatedBy::User { name: name.to_string() },
            ActorKind::Token(id) => {
                let token = token_by_id(&self.db, id).await?;
                CreatedBy::Token { name: token.filter(|t| t.workspace_id == run.workspace_id).map(|t| t.name) }
            }
            ActorKind::Cli => CreatedBy::Cli,
            ActorKind::System => CreatedBy::System,
        })
    }

    /// Waits until the run changes (or is already closed), at most `timeout`. Returns the run
    /// and whether it changed while waiting.
    pub async fn wait(&self, workspace_id: Uuid, id: Uuid, timeout: Duration) -> Result<(WorkflowRun, bool), AppError> {
        let mut events = self.events.subscribe();
        let start = runs::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        if !start.status.is_open() {
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
            let current = runs::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
            let changed = current.version != start.version;
            let timed_out = event.is_err();
            if changed || timed_out {
                return Ok((self.to_view(current).await?, changed));
            }
        }
    }

    pub(super) async fn to_view(&self, run: RunRow) -> Result<WorkflowRun, AppError> {
        let documents = runs::documents(&self.db, run.id).await?;
        let created_by = self.created_by(&run).await?;
        let mut view = view_of(run, documents, created_by)?;
        self.guard(&mut view).await?;
        Ok(view)
    }

    /// Passes a run's args, result and documents through the workspace's leak guard.
    async fn guard(&self, view: &mut WorkflowRun) -> Result<(), AppError> {
        let (workspace_id, place) = (view.workspace_id, format!("run {}", view.id));
        self.secrets.mask_all(workspace_id, parts_of(view), &place, &Actor::system()).await
    }
}

/// What of a run people and agents wrote: its arguments, result and documents.
fn parts_of(view: &mut WorkflowRun) -> Vec<&mut Value> {
    let mut parts: Vec<&mut Value> = vec![&mut view.args];
    parts.extend(view.result.as_mut());
    parts.extend(view.documents.iter_mut().map(|d| &mut d.content));
    parts
}

/// Most runs whose status answer is kept; past it they start over.
const MAX_ANSWERS: usize = 10_000;

/// A status answer as JSON text, with the run as read and the guard it went through.
type Kept = (Arc<WorkflowRun>, LeakGuard, Arc<str>);

/// Status answers, by run.
#[derive(Default)]
pub(super) struct KeptAnswers(Mutex<HashMap<Uuid, Kept>>);

impl KeptAnswers {
    fn of(&self, run: &Arc<WorkflowRun>, guard: &LeakGuard) -> Option<Arc<str>> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(&run.id).filter(|(from, by, _)| Arc::ptr_eq(from, run) && by.is(guard)).map(|(.., text)| text.clone())
    }

    fn keep(&self, run: Arc<WorkflowRun>, guard: LeakGuard, text: Arc<str>) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_ANSWERS {
            kept.clear();
        }
        kept.insert(run.id, (run, guard, text));
    }
}

/// Runs a list answers with at most.
const LIST_LIMIT: i64 = 200;

/// A run as the API shows it, with its documents.
pub(super) fn view_of(
    run: RunRow,
    documents: Vec<RunDocument>,
    created_by: CreatedBy,
) -> Result<WorkflowRun, AppError> {
    let status = run.status;
    let transitions = if status == RunStatus::Waiting {
        builtin_of(&run)?
            .transitions()
            .iter()
            .filter(|t| t.waits() && t.from == run.place)
            .map(|t| t.name.as_str().to_string())
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
        args: run.args,
        result: run.result,
        parent_id: run.parent_id,
        callback: run.callback,
        expires_at: run.expires_at,
        created_at: run.created_at,
        created_by,
        updated_at: run.updated_at,
        transitions,
        documents,
    })
}
