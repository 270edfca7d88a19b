//! A request form's submission: every key must have been requested, every value is parsed and
//! stored inside the transition's transaction, and only the keys are recorded.

use serde_json::{json, Value};

use super::*;
use crate::server::domain::Submission;

impl WorkflowEngine {
    /// Checks every key of a submission was requested (once), stores every value inside `tx`
    /// and returns the payload to record (keys only) and the events to publish.
    pub(super) async fn store_submission(
        &self,
        tx: &mut Tx,
        sealer: &crate::server::service::secrets::Sealer,
        run: &RunRow,
        submission: Submission,
        actor: &Actor,
    ) -> Result<(Value, Vec<Event>), AppError> {
        let requested = requested_keys(tx, run).await?;
        let mut seen = std::collections::HashSet::new();
        let mut parsed = Vec::with_capacity(submission.variables.len());
        for (key, value) in submission.variables {
            let key = self.secrets.parse_key(&key)?;
            if !requested.contains(key.as_str()) {
                return Err(AppError::BadRequest(format!("'{key}' was not requested")));
            }
            if !seen.insert(key.clone()) {
                return Err(AppError::BadRequest(format!("'{key}' was submitted twice")));
            }
            parsed.push((key, value));
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
        let keys: Vec<RequestedKey> = parsed.iter().map(|(key, _)| RequestedKey::new(key.as_str())).collect();
        Ok((json!({ "variables": keys }), events))
    }
}

/// The run's requested keys: those of its latest SecretRequestDocument.
async fn requested_keys(tx: &mut Tx, run: &RunRow) -> Result<std::collections::HashSet<String>, AppError> {
    let content = runs::latest_document_in(tx, run.id, DocumentKind::SecretRequestDocument)
        .await?
        .ok_or_else(|| AppError::Conflict("this run has no secret request".into()))?;
    let request: SecretRequest = serde_json::from_str(&content)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored request is invalid: {e}")))?;
    Ok(request.variables.into_iter().map(|v| v.key).collect())
}
