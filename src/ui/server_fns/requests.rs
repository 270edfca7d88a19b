//! A run's page: reading a run, and answering (or declining) a secret request.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, RunPageData, WorkflowRun};

/// A run as its page shows it (markdown documents rendered, times formatted).
#[server(prefix = "/studio", endpoint = "run")]
pub async fn get_run(workspace_id: Uuid, run_id: Uuid) -> Result<RunPageData, ApiError> {
    let run = crate::server::web::studio::run(workspace_id, run_id).await.map_err(crate::server::web::studio::fail)?;
    Ok(crate::ui::run_page::run_page(run))
}

/// Submits a SecretRequestDocument form (`values[KEY]=...`): all values stored and the run
/// continued in one transaction. Without JavaScript the browser comes back to the run page (its
/// URL without an earlier error); the run page's island reads the run again itself.
#[server(prefix = "/studio", endpoint = "submit_request")]
pub async fn submit_request(
    csrf: String,
    workspace_id: Uuid,
    run_id: Uuid,
    values: std::collections::HashMap<String, String>,
) -> Result<WorkflowRun, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let run = crate::server::web::studio::submit_request(workspace_id, run_id, values)
        .await
        .map_err(crate::server::web::studio::fail)?;
    crate::server::web::studio::back_to(&format!("/workspaces/{workspace_id}/runs/{run_id}"));
    Ok(run)
}

/// Declines a request.
#[server(prefix = "/studio", endpoint = "decline_request")]
pub async fn decline_request(csrf: String, workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let run = crate::server::web::studio::decline_request(workspace_id, run_id)
        .await
        .map_err(crate::server::web::studio::fail)?;
    crate::server::web::studio::back_to(&format!("/workspaces/{workspace_id}/runs/{run_id}"));
    Ok(run)
}
