//! The tools an LLM agent may call. Nothing here ever returns a value: `get_secret_keys` gives
//! keys and flags, and the request tools open a form for a person and answer with a run id.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::model::{Pending, RequestedKey, ToolDefinition, ToolResult};
use crate::server::domain::context::{MAX_HELP_URL_CHARS, MAX_NOTE_CHARS};
use crate::server::domain::{Actor, Scope};
use crate::server::error::AppError;
use crate::server::service::secrets::SecretService;
use crate::server::service::usage;
use crate::server::service::waiting::{self, Heartbeat, WaitArgs, MAX_WAIT_SECS};
use crate::server::service::workflow::builtin::parse_request;
use crate::server::service::workflow::StartOptions;
use crate::server::service::workflow::WorkflowEngine;

/// Callback transition name recorded on runs started by `request_secrets_task`.
pub const TASK_CALLBACK: &str = "secretsStored";

const ONLY_CALL: &str = "This must be the only tool call in the response.";
const CONTEXT: &str =
    "Give a short reason and, for each key, a description and a helpUrl (https) so the user knows what to paste.";

fn variables_schema() -> Value {
    let plain_text = |description: &str| {
        json!({"type": "string", "maxLength": MAX_NOTE_CHARS, "description": format!(
            "{description} Plain text (newlines allowed, no other control characters), at most {MAX_NOTE_CHARS} characters."
        )})
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["variables"],
        "properties": {
            "reason": plain_text("Why the secrets are needed, shown to the user above the form."),
            "variables": {
                "type": "array",
                "description": "List of secret keys to request from the user",
                "minItems": 1,
                "maxItems": crate::server::service::workflow::MAX_REQUESTED_KEYS,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["key"],
                    "properties": {
                        "key": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "minLength": 1, "maxLength": 200},
                        "description": plain_text("What this value is and where the user finds it, shown next to its field."),
                        "helpUrl": {
                            "type": "string",
                            "format": "uri",
                            "pattern": "^https://",
                            "maxLength": MAX_HELP_URL_CHARS,
                            "description": "A page explaining how to get this value, linked next to its field. An absolute https:// URL."
                        }
                    }
                }
            }
        }
    })
}

/// `request_secrets_task` takes the calling run too.
fn task_schema() -> Value {
    let mut schema = variables_schema();
    schema["properties"]["parent"] = json!({
        "type": "string",
        "format": "uuid",
        "description": "The calling run's workflowId: it receives a TaskResult document (and its callback) when the request completes."
    });
    schema
}

/// The tool definitions, with JSON Schema input schemas.
pub fn definitions() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "get_secret_keys".into(),
            description: "Returns the list of secret keys available in the current workspace, each with whether it has a value. Does not return secret values.".into(),
            input_schema: json!({"type": "object", "additionalProperties": false, "properties": {}}),
        },
        ToolDefinition {
            name: "request_secrets".into(),
            description: format!(
                "Requests secret values from the user. Shows a secure input form in the Studio. Values are stored securely and never exposed to the workflow or LLM. Returns the key names after the user provides the values. {CONTEXT} {ONLY_CALL}"
            ),
            input_schema: variables_schema(),
        },
        ToolDefinition {
            name: "request_secrets_task".into(),
            description: format!(
                "Agent-friendly task variant of request_secrets. Launches the secrets_request workflow as a sub-workflow, displays an embedded form, and completes via callback when the user submits secrets (\"Secrets have been stored securely by the user.\"). {CONTEXT} {ONLY_CALL}"
            ),
            input_schema: task_schema(),
        },
        ToolDefinition {
            name: "wait_for_secrets".into(),
            description: format!(
                "Waits until the user answers a secret request (the workflowId that request_secrets or request_secrets_task returned), at most timeoutSeconds (default {}, at most {MAX_WAIT_SECS}). Answers completed (with the stored keys), declined, expired or pending (call again to keep waiting). Never returns secret values.",
                waiting::DEFAULT_WAIT_SECS
            ),
            input_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["workflowId"],
                "properties": {
                    "workflowId": {"type": "string", "format": "uuid", "description": "The run of the secret request"},
                    "timeoutSeconds": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECS, "description": "Seconds to wait at most"}
                }
            }),
        },
        ToolDefinition {
            name: "http_request".into(),
            description: "Makes an HTTP request from the server with secrets you never see: write {{secrets.KEY}} in the url, a header or the body and the server puts the value in. Each secret may only go to the hosts its egress policy allows (else egress_denied, nothing sent). Answers {status, headers, body} with every stored value masked as ***. Needs the secrets:use scope.".into(),
            input_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["method", "url"],
                "properties": {
                    "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
                    "url": {"type": "string", "description": "An absolute http(s) URL; may contain {{secrets.KEY}}"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Header names and values; values may contain {{secrets.KEY}}, e.g. Authorization: Bearer {{secrets.GITHUB_TOKEN}}"},
                    "body": {"type": "string", "description": "The request body as text; may contain {{secrets.KEY}} ({{{{ for a literal {{)"},
                    "workflowId": {"type": "string", "format": "uuid", "description": "The run this request is made for, recorded with each use in the audit log"}
                }
            }),
        },
        ToolDefinition {
            name: "check_secret".into(),
            description: "Checks whether a candidate value equals the stored value of a secret (compared in constant time; audited; at most 20 checks a minute), so an agent can confirm a key without reading it. Answers {matches: true|false}. Needs the secrets:use scope.".into(),
            input_schema: json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["key", "value"],
                "properties": {
                    "key": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "minLength": 1, "maxLength": 200},
                    "value": {"type": "string", "description": "The candidate value"}
                }
            }),
        },
    ]
}

/// The scope a tool needs: `secrets:use` for the tools that use a value, `tools:call` for the
/// rest.
pub fn required_scope(name: &str) -> Scope {
    match name {
        "check_secret" | "http_request" => Scope::SecretsUse,
        _ => Scope::ToolsCall,
    }
}

/// Arguments of `check_secret`. The candidate is a value: it is parsed into a `SecretValue` at
/// once and never echoed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckArgs {
    key: String,
    value: String,
}

fn strict<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, AppError> {
    serde_json::from_value(args).map_err(|e| {
        AppError::BadRequest(format!(
            "invalid arguments: {}",
            crate::server::error::without_string_literals(&e.to_string())
        ))
    })
}

/// A tool call body: `{"args": {...}, "parent"?: uuid}`, or the arguments object itself.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    args: Value,
    #[serde(default)]
    parent: Option<Uuid>,
}

/// Runs the tool `name` in `workspace_id`; the caller has been authorized for the tool's
/// scope ([`required_scope`]). A long call (`wait_for_secrets`) beats `heartbeat` at least
/// every 10 seconds. The answer passes the workspace's leak guard on its way out.
#[tracing::instrument(skip(secrets, workflows, body, actor, heartbeat), err)]
pub async fn call(
    secrets: &SecretService,
    workflows: &WorkflowEngine,
    workspace_id: Uuid,
    name: &str,
    body: Value,
    actor: &Actor,
    heartbeat: &mut impl Heartbeat,
) -> Result<ToolResult, AppError> {
    let place = format!("tool {name}");
    match run_tool(secrets, workflows, workspace_id, name, body, actor, heartbeat).await {
        Ok(mut result) => {
            secrets.mask_json(workspace_id, &mut result.data, &place, actor).await?;
            Ok(result)
        }
        // An error's message may quote input, and input may hold a value.
        Err(err) => {
            let mut message = serde_json::Value::Null;
            let err = err.map_message(|text| {
                message = serde_json::Value::String(text);
                String::new()
            });
            if message.is_null() {
                return Err(err);
            }
            secrets.mask_json(workspace_id, &mut message, &format!("{place} error"), actor).await?;
            let masked = message.as_str().unwrap_or_default().to_string();
            Err(err.map_message(|_| masked))
        }
    }
}

/// A tool's answer as the REST API sends it.
pub enum Reply {
    /// Made for this call.
    Result(ToolResult),
    /// The whole answer (`{"data": ...}`) as JSON text, kept from an earlier call while it
    /// holds.
    Text(String),
}

/// [`call`] for the REST API: `get_secret_keys` answers with the text kept while the
/// workspace's secrets are unchanged (see `SecretService::key_states_json`; agents ask it far
/// more often than secrets change), every other tool as [`call`] does.
pub async fn call_for_rest(
    secrets: &SecretService,
    workflows: &WorkflowEngine,
    workspace_id: Uuid,
    name: &str,
    body: Value,
    actor: &Actor,
    heartbeat: &mut impl Heartbeat,
) -> Result<Reply, AppError> {
    if name != "get_secret_keys" {
        return call(secrets, workflows, workspace_id, name, body, actor, heartbeat).await.map(Reply::Result);
    }
    let keys = secret_keys_json(secrets, workspace_id, body, actor).await?;
    Ok(Reply::Text(format!(r#"{{"data":{keys}}}"#)))
}

/// `get_secret_keys`' data as JSON text, kept while the workspace's secrets are unchanged
/// (`SecretService::key_states_json`): what the REST API and MCP answer with.
pub async fn secret_keys_json(
    secrets: &SecretService,
    workspace_id: Uuid,
    body: Value,
    actor: &Actor,
) -> Result<std::sync::Arc<str>, AppError> {
    let (args, _) = split_envelope(body)?;
    no_arguments(&args)?;
    secrets.key_states_json(workspace_id, "tool get_secret_keys", actor).await
}

/// `get_secret_keys` takes none: nothing, or an empty object.
fn no_arguments(args: &Value) -> Result<(), AppError> {
    match args {
        Value::Null => Ok(()),
        Value::Object(map) if map.is_empty() => Ok(()),
        _ => Err(AppError::BadRequest("get_secret_keys takes no arguments".into())),
    }
}

async fn run_tool(
    secrets: &SecretService,
    workflows: &WorkflowEngine,
    workspace_id: Uuid,
    name: &str,
    body: Value,
    actor: &Actor,
    heartbeat: &mut impl Heartbeat,
) -> Result<ToolResult, AppError> {
    let (args, parent) = split_envelope(body)?;
    match name {
        "get_secret_keys" => {
            no_arguments(&args)?;
            let keys = secrets.key_states(workspace_id).await?;
            Ok(ToolResult { data: json!(keys), pending: None })
        }
        "request_secrets" | "request_secrets_task" => {
            let request = parse_request(args, secrets.limits())?;
            let task = name == "request_secrets_task";
            if parent.is_some() && !task {
                return Err(AppError::BadRequest("only request_secrets_task takes a parent run".into()));
            }
            let options = StartOptions {
                parent,
                callback: (task && parent.is_some()).then(|| TASK_CALLBACK.to_string()),
                expires_in_seconds: None,
            };
            let args = serde_json::to_value(&request).expect("BUG: a request serializes");
            let run = workflows.start(workspace_id, "secrets_request", args, options, actor).await?;
            let pending = Some(Pending { workflow_id: run.id });
            let keys: Vec<RequestedKey> = request.variables.iter().map(|v| RequestedKey::new(v.key.as_str())).collect();
            let data = if task { json!({"workflowId": run.id}) } else { json!({ "variables": keys }) };
            Ok(ToolResult { data, pending })
        }
        "http_request" => {
            if parent.is_some() {
                return Err(AppError::BadRequest("only request_secrets_task takes a parent run".into()));
            }
            let args = strict(args)?;
            let data = crate::server::service::http_request::http_request(secrets, workspace_id, args, actor).await?;
            Ok(ToolResult { data, pending: None })
        }
        "check_secret" => {
            if parent.is_some() {
                return Err(AppError::BadRequest("only request_secrets_task takes a parent run".into()));
            }
            let args: CheckArgs = strict(args)?;
            let key = secrets.existing_key(&args.key)?;
            let candidate = secrets.parse_value(args.value)?;
            let matches = usage::check_secret(secrets, workspace_id, &key, &candidate, actor).await?;
            Ok(ToolResult { data: json!({ "matches": matches }), pending: None })
        }
        "wait_for_secrets" => {
            if parent.is_some() {
                return Err(AppError::BadRequest("only request_secrets_task takes a parent run".into()));
            }
            let args = WaitArgs::parse(args)?;
            let outcome =
                waiting::wait_for_request(workflows, workspace_id, args.workflow_id, args.timeout(), heartbeat).await?;
            let pending =
                (outcome.status == waiting::RequestStatus::Pending).then_some(Pending { workflow_id: outcome.workflow_id });
            Ok(ToolResult { data: outcome.to_json(), pending })
        }
        other => Err(AppError::BadRequest(format!(
            "unknown tool '{other}'; known tools: get_secret_keys, request_secrets, request_secrets_task, wait_for_secrets, http_request, check_secret"
        ))),
    }
}

fn split_envelope(body: Value) -> Result<(Value, Option<Uuid>), AppError> {
    match body {
        // The arguments object itself, with a task's parent run beside them (as MCP sends it).
        Value::Object(mut map) if !map.contains_key("args") && map.contains_key("parent") && map.len() > 1 => {
            let parent = serde_json::from_value(map.remove("parent").unwrap_or_default())
                .map_err(|_| AppError::BadRequest("parent must be a run id (a UUID)".into()))?;
            Ok((Value::Object(map), parent))
        }
        Value::Object(ref map) if map.contains_key("args") || map.contains_key("parent") => {
            let envelope: Envelope = serde_json::from_value(body).map_err(|e| {
                AppError::BadRequest(format!(
                    "invalid tool call: {}",
                    crate::server::error::without_string_literals(&e.to_string())
                ))
            })?;
            Ok((envelope.args, envelope.parent))
        }
        Value::Object(_) | Value::Null => Ok((body, None)),
        _ => Err(AppError::BadRequest("the tool call body must be a JSON object".into())),
    }
}
