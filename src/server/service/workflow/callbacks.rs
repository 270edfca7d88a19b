//! What follows a committed move: the `workflow.updated` event, and the parent's callback
//! when a sub-workflow completes.

use serde_json::{json, Value};

use super::engine::Firing;
use super::*;

impl WorkflowEngine {
    /// The callback to a parent run: a TaskResult document on the parent, in the child's
    /// transaction. When the parent waits on the named callback transition, it is fired after
    /// the commit.
    pub(super) async fn notify_parent(
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
        runs::insert_document(tx, parent_id, DocumentKind::TaskResult, &content.to_string()).await?;
        let parent = runs::run_by_id(tx, parent_id).await?.ok_or(AppError::NotFound)?;
        let status = parent.status;
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

    /// Fires the parent's callback transition, when the committed move completed a
    /// sub-workflow whose parent waits on it.
    pub(super) async fn after_commit(&self, outcome: Outcome) {
        if let Some(ParentNote {
            workspace_id,
            id,
            callback: Some(callback),
            content,
            status: RunStatus::Waiting,
            ..
        }) = outcome.parent
        {
            let fired =
                Box::pin(self.fire_with(workspace_id, id, &callback, Firing::Payload(content), &Actor::system())).await;
            if let Err(err) = fired {
                tracing::info!(error = %err, parent = %id, "the parent run did not take the callback transition");
            }
        }
    }
}

impl Outcome {
    /// The events of a move: the run's `workflow.updated`, and its parent's when a callback
    /// reached it.
    pub(super) fn events(&self) -> Vec<Event> {
        let mut events = vec![self.event.clone()];
        if let Some(parent) = &self.parent {
            events.push(Event::WorkflowUpdated {
                workspace_id: parent.workspace_id,
                workflow_id: parent.id,
                workflow: parent.workflow.clone(),
                place: parent.place.clone(),
                status: parent.status,
            });
        }
        events
    }
}
