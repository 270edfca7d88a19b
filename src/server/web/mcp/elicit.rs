//! Asking the person through the MCP client (URL-mode elicitation): the client opens the
//! Studio page of the request, the person answers there, and the call completes.
//!
//! - 2026-07-28: an `input_required` result whose input request opens the page, with a
//!   `requestState` sealed by the SDK's codec (HMAC under a key derived from the master key),
//!   bound to the caller and the call, expiring, and accepted once (recorded in the database,
//!   so it holds across instances and restarts). The retry reports the request's outcome.
//! - 2025-11-25: the URL-elicitation-required error (-32042) with an `elicitationId`, and
//!   `notifications/elicitation/complete` on the client's stream when the person answers (the
//!   SDK has neither, so both are written here as the specification writes them). The retried
//!   call finds its request again by caller and call, and reports the outcome.
//! - A client without URL elicitation gets the URL and the `workflowId` and waits with
//!   `wait_for_secrets`.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomNotification, ElicitRequest, ElicitRequestParams, ElicitResult,
    ElicitationAction, ErrorCode, ErrorData, InputRequest, InputRequiredResult, ProtocolVersion, SealOptions,
    ServerNotification,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::RoleServer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::server::{answer, tool_error, Caller, McpServer, Progress};
use crate::model::ToolResult;
use crate::server::service::waiting::{self, Quiet, RequestOutcome, RequestStatus};
use crate::server::service::{tools, workflow::WorkflowEngine};
use crate::server::store;

/// The JSON-RPC code of the 2025-11-25 URL-elicitation-required error.
pub const URL_ELICITATION_REQUIRED: ErrorCode = ErrorCode(-32042);
/// The key of the one input request of a 2026-07-28 `input_required` result.
const INPUT_KEY: &str = "secrets";
/// How long a `requestState` stays good.
const STATE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a 2026-07-28 retry waits for the person before answering "pending".
const RETRY_WAIT: Duration = Duration::from_secs(60);

/// What the retry of a 2026-07-28 call carries in its sealed `requestState`.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedRequest {
    /// The elicitation's row (used once).
    elicitation: Uuid,
    run: Uuid,
}

/// The client's era and whether it opens links for the person.
fn modern(context: &RequestContext<RoleServer>) -> bool {
    context.protocol_version().is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
}

fn opens_urls(context: &RequestContext<RoleServer>) -> bool {
    context.client_capabilities().and_then(|caps| caps.elicitation).and_then(|e| e.url).is_some()
}

/// SHA-256 over the tool name and its arguments (keys sorted), hex: what binds a
/// `requestState` to its call and finds a 2025-11-25 call's request again.
fn call_digest(name: &str, args: &Value) -> String {
    fn canonical(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    let digest = Sha256::digest(format!("{name}\n{}", canonical(args)).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the person reads in the client before the link opens.
fn message(args: &Value) -> String {
    let keys: Vec<&str> =
        args["variables"].as_array().into_iter().flatten().filter_map(|v| v["key"].as_str()).collect();
    let asked = format!("Enter {} in the secure form of loopstack-secrets.", keys.join(", "));
    match args["reason"].as_str() {
        Some(reason) if !reason.trim().is_empty() => format!("{asked} Reason: {}", reason.trim()),
        _ => asked,
    }
}

impl McpServer {
    /// `request_secrets` and `request_secrets_task` over MCP.
    pub(super) async fn request_secrets(
        &self,
        caller: &Caller,
        name: &str,
        args: Value,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let digest = call_digest(name, &args);
        let bound = format!("{}|{digest}", caller.actor.0);
        if let Some(sealed) = &request.request_state {
            return self.resume(caller, sealed, &bound, request, context).await;
        }
        let url_mode = opens_urls(context);
        if url_mode && !modern(context) {
            if let Some(open) = store::open_elicitation(&self.state.db, caller.workspace_id, &caller.actor.0, &digest)
                .await
                .map_err(internal)?
            {
                return self.legacy_retry(caller, open, &args, context).await;
            }
        }
        let result = match self.start(caller, name, args.clone()).await {
            Ok(result) => result,
            Err(err) => return tool_error(err),
        };
        let run = result.pending.as_ref().map(|p| p.workflow_id).expect("BUG: a request has a run");
        let url = self.run_url(caller.workspace_id, Some(run)).expect("a run has a page");
        if !url_mode {
            return Ok(answer(name, result, &Some(url)).into());
        }
        let id = Uuid::new_v4();
        store::insert_elicitation(&self.state.db, id, caller.workspace_id, run, &caller.actor.0, &digest)
            .await
            .map_err(internal)?;
        if modern(context) {
            let payload = serde_json::to_vec(&SealedRequest { elicitation: id, run }).expect("BUG: serializes");
            let sealed =
                self.codec.seal_with(&payload, &SealOptions::new().associated_data(bound.as_bytes()).ttl(STATE_TTL));
            let params = ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: message(&args),
                url,
                // 2026-07-28 has no elicitation ids; the SDK writes the field anyway, so it
                // names the elicitation rather than being empty.
                elicitation_id: id.to_string(),
            };
            let inputs = [(INPUT_KEY.to_string(), InputRequest::Elicitation(ElicitRequest::new(params)))];
            return Ok(InputRequiredResult::new(Some(inputs.into_iter().collect()), Some(sealed)).into());
        }
        notify_when_answered(self.state.workflows.clone(), context.peer.clone(), caller.workspace_id, run, id);
        Err(url_required(id, &url, &message(&args)))
    }

    async fn start(
        &self,
        caller: &Caller,
        name: &str,
        args: Value,
    ) -> Result<ToolResult, crate::server::error::AppError> {
        let (state, actor) = (&self.state, &caller.actor);
        tools::call(&state.secrets, &state.workflows, caller.workspace_id, name, args, actor, &mut Quiet).await
    }

    /// A 2026-07-28 retry: the sealed state must open for this caller and call, unexpired and
    /// unused; then the person's answer in the client, and the request's outcome.
    async fn resume(
        &self,
        caller: &Caller,
        sealed: &str,
        bound: &str,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let refused = || ErrorData::invalid_params("requestState is not valid for this call", None);
        let opened = self.codec.open_with(sealed, bound.as_bytes()).map_err(|_| refused())?;
        let state: SealedRequest = serde_json::from_slice(&opened).map_err(|_| refused())?;
        if !store::use_elicitation(&self.state.db, state.elicitation).await.map_err(internal)? {
            return Err(ErrorData::invalid_params("requestState has already been used", None));
        }
        let response = request.input_responses.as_ref().and_then(|inputs| inputs.get(INPUT_KEY));
        let action = response.and_then(|r| serde_json::from_value::<ElicitResult>(r.clone()).ok()).map(|r| r.action);
        let workflows = &self.state.workflows;
        if matches!(action, Some(ElicitationAction::Decline | ElicitationAction::Cancel)) {
            let reason = "declined by the user in the MCP client";
            // Already answered or closed: the outcome below says how.
            let _ = workflows.cancel(caller.workspace_id, state.run, reason, &caller.actor).await;
        }
        let _slot = match caller.hold_stream(&self.state) {
            Ok(slot) => slot,
            Err(err) => return tool_error(err),
        };
        let mut progress = Progress::new(&self.state, caller, context);
        let waited =
            waiting::wait_for_request(workflows, caller.workspace_id, state.run, RETRY_WAIT, &mut progress).await;
        match waited {
            Ok(outcome) => Ok(self.outcome(caller, outcome).into()),
            Err(err) => tool_error(err),
        }
    }

    /// A 2025-11-25 call made again: answered requests report their outcome (once); an
    /// unanswered one asks for the same link again.
    async fn legacy_retry(
        &self,
        caller: &Caller,
        open: store::ElicitationRow,
        args: &Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let run = match self.state.workflows.view(open.workspace_id, open.run_id).await {
            Ok(run) => run,
            Err(err) => return tool_error(err),
        };
        let outcome = RequestOutcome::of(&run);
        if outcome.status == RequestStatus::Pending {
            let url = self.run_url(open.workspace_id, Some(open.run_id)).expect("a run has a page");
            notify_when_answered(
                self.state.workflows.clone(),
                context.peer.clone(),
                open.workspace_id,
                run.id,
                open.id,
            );
            return Err(url_required(open.id, &url, &message(args)));
        }
        store::use_elicitation(&self.state.db, open.id).await.map_err(internal)?;
        Ok(self.outcome(caller, outcome).into())
    }

    /// A request's outcome as a tool answer.
    fn outcome(&self, caller: &Caller, outcome: RequestOutcome) -> rmcp::model::CallToolResult {
        let url = (outcome.status == RequestStatus::Pending)
            .then(|| self.run_url(caller.workspace_id, Some(outcome.workflow_id)))
            .flatten();
        let mut structured = outcome.to_json();
        if let Some(url) = &url {
            structured["url"] = json!(url);
        }
        let mut result = rmcp::model::CallToolResult::success(vec![rmcp::model::ContentBlock::text(outcome.text())]);
        result.structured_content = Some(structured);
        result
    }
}

/// The 2025-11-25 URL-elicitation-required error, as the specification writes it.
fn url_required(id: Uuid, url: &str, message: &str) -> ErrorData {
    let elicitation = json!({"mode": "url", "elicitationId": id, "url": url, "message": message});
    ErrorData::new(
        URL_ELICITATION_REQUIRED,
        "This request requires more information.",
        Some(json!({ "elicitations": [elicitation] })),
    )
}

/// Sends `notifications/elicitation/complete` on the client's session when the person has
/// answered (or the request closed otherwise), for as long as the request stays open.
fn notify_when_answered(workflows: WorkflowEngine, peer: Peer<RoleServer>, workspace_id: Uuid, run: Uuid, id: Uuid) {
    tokio::spawn(async move {
        loop {
            match waiting::wait_for_request(&workflows, workspace_id, run, waiting::HEARTBEAT * 6, &mut Quiet).await {
                Ok(outcome) if outcome.status == RequestStatus::Pending => {
                    if peer.is_transport_closed() {
                        return;
                    }
                }
                Ok(_) => break,
                Err(_) => return,
            }
        }
        let params = json!({ "elicitationId": id });
        let notification = CustomNotification::new("notifications/elicitation/complete", Some(params));
        if let Err(err) = peer.send_notification(ServerNotification::CustomNotification(notification)).await {
            tracing::info!(error = %err, elicitation = %id, "the client left before its elicitation completed");
        }
    });
}

fn internal(err: crate::server::error::AppError) -> ErrorData {
    tracing::warn!(error = %err, "MCP storage failure");
    ErrorData::internal_error("the server could not complete the call", None)
}
