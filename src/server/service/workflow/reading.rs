//! Reading runs: one with its documents, a workspace's list (documents in one query), and the
//! long-poll that waits for a run to move.

use std::time::Duration;

use super::*;

impl WorkflowEngine {
    /// A run with its documents and available transitions.
    pub async fn view(&self, workspace_id: Uuid, id: Uuid) -> Result<WorkflowRun, AppError> {
        let run = runs::run(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        self.to_view(run).await
    }

    /// A workspace's runs, newest first, optionally with one status (`waiting`: the pending
    /// requests).
    pub async fn list(&self, workspace_id: Uuid, status: Option<RunStatus>) -> Result<Vec<WorkflowRun>, AppError> {
        let status = status.map(RunStatus::as_str);
        let rows = runs::runs(&self.db, workspace_id, status, LIST_LIMIT).await?;
        // The documents of all listed runs in one query, not one per run.
        let mut documents = runs::documents_of_runs(&self.db, workspace_id, status, LIST_LIMIT).await?;
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
        view_of(run, documents)
    }
}

/// Runs a list answers with at most.
const LIST_LIMIT: i64 = 200;

/// A run as the API shows it, with its documents.
pub(super) fn view_of(run: RunRow, documents: Vec<RunDocument>) -> Result<WorkflowRun, AppError> {
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
        updated_at: run.updated_at,
        transitions,
        documents,
    })
}
