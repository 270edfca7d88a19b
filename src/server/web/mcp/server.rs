//! The MCP handler: the tool list (the same definitions as the REST tool API), tool calls
//! dispatched to the tools service, progress while waiting, and answers for models. Requests
//! for secrets go through [`super::elicit`], which opens the Studio's form for the person.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestStateCodec,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::ToolResult;
use crate::server::domain::{Actor, Scope};
use crate::server::error::AppError;
use crate::server::service::tools;
use crate::server::service::waiting::Heartbeat;
use crate::server::web::principal::Principal;
use crate::server::web::state::AppState;
use crate::server::web::streams::StreamSlot;

/// Who calls: a workspace and the actor the audit names; over HTTP also the token, checked
/// again while a call waits.
#[derive(Clone, Debug)]
pub struct Caller {
    pub workspace_id: Uuid,
    pub actor: Actor,
    principal: Option<Principal>,
}

impl Caller {
    /// A token's call over HTTP.
    pub fn remote(workspace_id: Uuid, principal: Principal) -> Caller {
        Caller { workspace_id, actor: principal.actor(), principal: Some(principal) }
    }

    /// The local operator over stdio (`loopstack-secrets mcp`).
    pub fn local(workspace_id: Uuid) -> Caller {
        Caller { workspace_id, actor: Actor::cli("mcp"), principal: None }
    }

    /// Holds one of the credential's open-stream slots for a call that waits (as a long-poll
    /// does); the local operator has no limit.
    pub fn hold_stream(&self, state: &AppState) -> Result<Option<StreamSlot>, AppError> {
        self.principal.as_ref().map(|principal| state.streams.open(principal.credential_id())).transpose()
    }

    /// Whether the caller holds `scope` in its workspace (the local operator holds all).
    pub async fn authorize(&self, state: &AppState, scope: Scope) -> Result<(), AppError> {
        match &self.principal {
            Some(principal) => principal.authorize(&state.db, self.workspace_id, scope).await,
            None => Ok(()),
        }
    }

    /// Whether the credential still holds (a revoked token ends a waiting call).
    pub async fn recheck(&self, state: &AppState) -> Result<(), AppError> {
        match &self.principal {
            Some(principal) => principal.recheck(state, self.workspace_id, Scope::ToolsCall).await,
            None => Ok(()),
        }
    }
}

/// The MCP server of one transport session (or one stateless request).
#[derive(Clone)]
pub struct McpServer {
    pub(super) state: AppState,
    /// The caller of every request over stdio; over HTTP each request brings its own.
    local: Option<Caller>,
    pub(super) codec: Arc<RequestStateCodec>,
    /// `get_secret_keys`' answer per workspace, made from the keys' kept text and served again
    /// while that text is the current one (shared by every session of the server).
    kept: Arc<Mutex<HashMap<Uuid, KeptKeys>>>,
}

/// An answer and the kept text it was made from (held, so its address names it).
struct KeptKeys {
    text: Arc<str>,
    answer: CallToolResult,
}

impl McpServer {
    /// A server over `state`; `local` is the stdio caller.
    pub fn new(state: AppState, local: Option<Caller>) -> McpServer {
        let key = state.kek.derive("mcp requestState");
        let codec = RequestStateCodec::try_new(key.as_slice()).expect("BUG: a 32-byte key is long enough");
        McpServer { state, local, codec: Arc::new(codec), kept: Arc::default() }
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        if let Some(local) = &self.local {
            return Ok(local.clone());
        }
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))
    }
}

/// The protocol versions both transports speak, newest first.
pub const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25];

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("loopstack-secrets", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Secrets for this workspace. get_secret_keys lists keys and whether each has a value; \
                 request_secrets asks the person for missing ones in a browser form; wait_for_secrets waits \
                 for the answer. No tool ever returns a secret value.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(&VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(TOOLS.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        TOOLS.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let name = request.name.to_string();
        if !TOOLS.iter().any(|tool| tool.name == name) {
            return Err(ErrorData::invalid_params(format!("unknown tool '{name}'"), None));
        }
        if let Err(err) = caller.authorize(&self.state, tools::required_scope(&name)).await {
            return tool_error(err);
        }
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        if name == "request_secrets" || name == "request_secrets_task" {
            return self.request_secrets(&caller, &name, args, &request, &context).await;
        }
        if name == "get_secret_keys" {
            return match self.secret_keys(&caller, args).await {
                Ok(answer) => Ok(answer.into()),
                Err(err) => tool_error(err),
            };
        }
        let _slot = match (name == "wait_for_secrets").then(|| caller.hold_stream(&self.state)) {
            Some(Err(err)) => return tool_error(err),
            Some(Ok(slot)) => slot,
            None => None,
        };
        let mut heartbeat = Progress::new(&self.state, &caller, &context);
        let called = tools::call(
            &self.state.secrets,
            &self.state.workflows,
            caller.workspace_id,
            &name,
            args,
            &caller.actor,
            &mut heartbeat,
        )
        .await;
        match called {
            Ok(result) => {
                let url = self.run_url(caller.workspace_id, result_run(&name, &result));
                Ok(answer(&name, result, &url).into())
            }
            Err(err) => tool_error(err),
        }
    }
}

impl McpServer {
    /// `get_secret_keys`: made from the keys' text kept for the REST API (the leak guard saw
    /// it, and the audit entry is written there) and kept while that text is current.
    async fn secret_keys(&self, caller: &Caller, args: Value) -> Result<CallToolResult, AppError> {
        let text = tools::secret_keys_json(&self.state.secrets, caller.workspace_id, args, &caller.actor).await?;
        if let Some(kept) = self.kept.lock().expect("kept answers").get(&caller.workspace_id) {
            if Arc::ptr_eq(&kept.text, &text) {
                return Ok(kept.answer.clone());
            }
        }
        let data = serde_json::from_str(&text).map_err(anyhow::Error::from)?;
        let made = answer("get_secret_keys", ToolResult { data, pending: None }, &None);
        let kept = KeptKeys { text, answer: made.clone() };
        self.kept.lock().expect("kept answers").insert(caller.workspace_id, kept);
        Ok(made)
    }

    /// The Studio page of a run, where a signed-in editor answers a request.
    pub(super) fn run_url(&self, workspace_id: Uuid, run: Option<Uuid>) -> Option<String> {
        run.map(|run| format!("{}/workspaces/{workspace_id}/runs/{run}", self.state.config.public_url()))
    }
}

/// The tool definitions as MCP tools, made once: the transport looks a tool up on every call.
static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(tool_list);

fn tool_list() -> Vec<Tool> {
    tools::definitions()
        .into_iter()
        .map(|definition| {
            let schema = match definition.input_schema {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            Tool::new(definition.name, definition.description, Arc::new(schema))
        })
        .collect()
}

/// The run a pending tool answer is about.
fn result_run(name: &str, result: &ToolResult) -> Option<Uuid> {
    (name != "get_secret_keys").then(|| result.pending.as_ref().map(|p| p.workflow_id)).flatten()
}

/// A tool's answer for a model: `structuredContent` (always an object) and a short text.
pub(super) fn answer(name: &str, result: ToolResult, url: &Option<String>) -> CallToolResult {
    let (structured, text) = match name {
        "get_secret_keys" => {
            let keys = result.data.as_array().cloned().unwrap_or_default();
            let listed: Vec<String> = keys
                .iter()
                .map(|k| {
                    let state = if k["hasValue"] == true { "has a value" } else { "no value" };
                    let from = if k["global"] == true { ", provided by the server" } else { "" };
                    format!("{} ({state}{from})", k["key"].as_str().unwrap_or_default())
                })
                .collect();
            let text = if listed.is_empty() {
                "No secrets are stored in this workspace.".to_string()
            } else {
                format!("{} secret key(s): {}.", listed.len(), listed.join(", "))
            };
            (json!({ "keys": keys }), text)
        }
        "http_request" => {
            let text = format!("HTTP {}\n{}", result.data["status"], result.data["body"].as_str().unwrap_or_default());
            (result.data, text)
        }
        "check_secret" => {
            let text = if result.data["matches"] == true {
                "The candidate matches the stored value."
            } else {
                "The candidate does not match the stored value."
            };
            (result.data, text.to_string())
        }
        _ => {
            let mut structured = match result.data {
                Value::Object(map) => map,
                other => Map::from_iter([("data".to_string(), other)]),
            };
            if let Some(pending) = &result.pending {
                structured.insert("status".into(), json!("pending"));
                structured.insert("workflowId".into(), json!(pending.workflow_id));
                if let Some(url) = url {
                    structured.insert("url".into(), json!(url));
                }
            }
            let text = pending_text(&Value::Object(structured.clone()));
            (Value::Object(structured), text)
        }
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// The text of a request answer: what happened and what to do next.
fn pending_text(structured: &Value) -> String {
    let id = structured["workflowId"].as_str().unwrap_or_default();
    match structured["status"].as_str() {
        Some("pending") => match structured["url"].as_str() {
            Some(url) => format!(
                "Waiting for the user to enter the secrets at {url} . Call wait_for_secrets with workflowId {id} to wait for them."
            ),
            None => format!("Waiting for the user. Call wait_for_secrets with workflowId {id} to wait for them."),
        },
        Some("completed") => crate::server::service::workflow::STORED_MESSAGE.to_string(),
        Some("declined") => "The user declined the request; no secrets were stored.".to_string(),
        Some("expired") => "The request expired before the secrets were provided.".to_string(),
        _ => "Done.".to_string(),
    }
}

/// A failed call as the caller should see it: bad input and refusals are tool errors the model
/// can read and correct; a failure of the server is a protocol error without details.
pub(super) fn tool_error(err: AppError) -> Result<CallToolResponse, ErrorData> {
    let api = err.to_api_error();
    if err.status_code().is_server_error() && !matches!(err, AppError::BadGateway(_)) {
        return Err(ErrorData::internal_error(api.message, None));
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(api.message.clone())]);
    result.structured_content = Some(json!({"error": {"code": api.code, "message": api.message}}));
    Ok(result.into())
}

/// The heartbeat of a waiting MCP call: a progress notification when the client asked for
/// them (with a progress token), and the credential checked again.
pub(super) struct Progress<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
}

impl<'a> Progress<'a> {
    pub(super) fn new(state: &'a AppState, caller: &'a Caller, context: &RequestContext<RoleServer>) -> Progress<'a> {
        Progress { state, caller, peer: context.peer.clone(), token: context.meta.get_progress_token() }
    }
}

impl Heartbeat for Progress<'_> {
    async fn beat(&mut self, waited: Duration, limit: Duration) -> Result<(), AppError> {
        self.caller.recheck(self.state).await?;
        if let Some(token) = &self.token {
            let mut param = ProgressNotificationParam::new(token.clone(), waited.as_secs_f64());
            param.total = Some(limit.as_secs_f64());
            param.message = Some("Waiting for the user to enter the secrets".into());
            // A client that went away simply misses it; the wait ends on its own.
            let _ = self.peer.notify_progress(param).await;
        }
        Ok(())
    }
}
