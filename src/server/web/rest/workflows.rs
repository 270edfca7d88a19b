//! `/api/v1/workspaces/:workspace_id/workflows`: start, read, list, fire transitions, cancel,
//! long-poll; and `.../events`, the server-sent event stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{RunStatus, WorkflowRun};
use crate::server::domain::{Scope, Submission};
use crate::server::error::AppError;
use crate::server::service::workflow::{StartOptions, TransitionName};
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::{ApiJson, ApiPath};
use crate::server::web::state::AppState;

/// The workflow and event routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workspaces/{workspace_id}/workflows", post(start).get(list))
        .route("/api/v1/workspaces/{workspace_id}/workflows/{id}", get(read))
        .route("/api/v1/workspaces/{workspace_id}/workflows/{id}/transitions/{transition}", post(fire))
        .route("/api/v1/workspaces/{workspace_id}/workflows/{id}/cancel", post(cancel))
        .route("/api/v1/workspaces/{workspace_id}/workflows/{id}/wait", get(wait))
        .route("/api/v1/workspaces/{workspace_id}/events", get(events))
}

/// Body of `POST .../workflows`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartRun {
    /// `secrets_request` or `secrets_example`.
    #[schema(pattern = "^(secrets_request|secrets_example)$")]
    pub workflow: String,
    /// For `secrets_request`, a `SecretRequest` (`{reason?, variables: [{key, description?,
    /// helpUrl?}]}`); `secrets_example` takes none.
    #[serde(default)]
    #[schema(schema_with = start_args_schema)]
    pub args: Value,
    /// A run to call back when this one completes.
    #[serde(default)]
    pub parent: Option<Uuid>,
    /// The parent's transition to fire on completion.
    #[serde(default)]
    pub callback: Option<String>,
    /// Stop waiting after this many seconds.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

/// The arguments of a new run: a `SecretRequest`, or nothing for `secrets_example`.
fn start_args_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
    use utoipa::openapi::Ref;
    let no_arguments = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    Schema::OneOf(
        OneOfBuilder::new()
            .item(Ref::from_schema_name("SecretRequest"))
            .item(no_arguments)
            .description(Some("`secrets_request`: a SecretRequest; `secrets_example`: no arguments"))
            .build(),
    )
}

/// Starts a run.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows", tag = "workflows",
    params(("workspace_id" = Uuid, Path)), request_body = StartRun,
    responses((status = 201, body = WorkflowRun), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody),
        (status = 429, description = "Too many runs started in this workspace in the last minute", body = crate::model::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a start is allowed again")))),
    security(("bearer" = ["workflows:run"])))]
#[tracing::instrument(skip_all, fields(%workspace_id))]
async fn start(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<WorkflowRun>), AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    let options =
        StartOptions { parent: body.parent, callback: body.callback, expires_in_seconds: body.expires_in_seconds };
    let run = state.workflows.start(workspace_id, &body.workflow, body.args, options, &principal.actor()).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Filter of the run list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only runs with this status (`waiting`: the pending requests).
    pub status: Option<RunStatus>,
}

/// Lists a workspace's runs, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ListQuery),
    responses((status = 200, body = [WorkflowRun]), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["workflows:run"])))]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<WorkflowRun>>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    Ok(Json(state.workflows.list(workspace_id, query.status).await?))
}

/// Reads a run: place, status, documents, available transitions.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{id}", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = WorkflowRun), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["workflows:run"])))]
async fn read(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Response, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    let text = state.workflows.view_json(workspace_id, id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text.to_string()).into_response())
}

/// Fires a waiting transition. The body is `{"payload": ...}` or the payload itself; for
/// `secretsSubmitted` it is `{"variables": [{"key", "value"}]}` and also needs `secrets:write`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows/{id}/transitions/{transition}", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("id" = Uuid, Path), ("transition" = String, Path)),
    request_body(content = Object),
    responses((status = 200, body = WorkflowRun), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody), (status = 409, body = crate::model::ErrorBody),
        (status = 413, body = crate::model::ErrorBody)),
    security(("bearer" = ["workflows:run", "secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id, %id, %transition))]
async fn fire(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id, transition)): ApiPath<(Uuid, Uuid, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<WorkflowRun>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    let form = TransitionName::parse(&transition) == Some(TransitionName::SecretsSubmitted);
    if form {
        principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    }
    let payload = match body {
        Value::Object(mut map) if map.len() == 1 && map.contains_key("payload") => {
            map.remove("payload").unwrap_or_default()
        }
        other => other,
    };
    let actor = principal.actor();
    let run = if form {
        // The values become `SecretValue`s here, at the edge.
        let submission = Submission::from_json(payload, state.secrets.limits())?;
        state.workflows.submit(workspace_id, id, submission, &actor).await?
    } else {
        state.workflows.fire(workspace_id, id, &transition, payload, &actor).await?
    };
    Ok(Json(run))
}

/// Cancels (declines) an open run.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows/{id}/cancel", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = WorkflowRun), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody),
        (status = 409, body = crate::model::ErrorBody)),
    security(("bearer" = ["workflows:run"])))]
async fn cancel(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<WorkflowRun>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    Ok(Json(state.workflows.cancel(workspace_id, id, "cancelled by the caller", &principal.actor()).await?))
}

/// Long-poll options.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct WaitQuery {
    /// Seconds to wait at most (default 30, at most 120).
    pub timeout: Option<u64>,
}

/// Waits until the run moves on (or is already closed), at most `timeout` seconds. The
/// `x-wait-outcome` header says `changed` or `timeout`.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{id}/wait", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("id" = Uuid, Path), WaitQuery),
    responses((status = 200, body = WorkflowRun), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["workflows:run"])))]
async fn wait(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
    Query(query): Query<WaitQuery>,
) -> Result<Response, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    let _slot = state.streams.open(principal.credential_id())?;
    let reauth = Duration::from_secs(state.config.reauth_secs.max(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.timeout.unwrap_or(30).min(120));
    // Waits in pieces of at most the re-check interval, so a credential revoked meanwhile
    // ends the wait with 401 (or a removed member's with 404) within that interval.
    let (run, changed) = loop {
        let piece = deadline.saturating_duration_since(tokio::time::Instant::now()).min(reauth);
        let (run, changed) = state.workflows.wait(workspace_id, id, piece).await?;
        if changed || tokio::time::Instant::now() >= deadline {
            break (run, changed);
        }
        principal.recheck(&state, workspace_id, Scope::WorkflowsRun).await?;
    };
    let mut response = Json(run).into_response();
    response.headers_mut().insert(
        HeaderName::from_static("x-wait-outcome"),
        HeaderValue::from_static(if changed { "changed" } else { "timeout" }),
    );
    Ok(response)
}

/// Server-sent events of a workspace: `secret.upserted`, `secret.deleted`,
/// `workflow.updated` (ids, keys and states only).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/events", tag = "workflows",
    params(("workspace_id" = Uuid, Path)),
    responses((status = 200, description = "text/event-stream of Event", body = crate::model::Event),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:list"])))]
async fn events(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    let slot = state.streams.open(principal.credential_id())?;
    let receiver = state.events.subscribe();
    let mut recheck = tokio::time::interval(Duration::from_secs(state.config.reauth_secs.max(1)));
    recheck.reset();
    // The stream ends when the credential no longer holds: a revoked or expired token, an
    // ended session or a removed member. The slot is released when the stream is dropped.
    let open = EventStream { state, principal, workspace_id, receiver, recheck, _slot: slot };
    let stream = futures::stream::unfold(open, |mut open| async move {
        loop {
            tokio::select! {
                received = open.receiver.recv() => match received {
                    Ok(event) if event.workspace_id() == open.workspace_id => {
                        // Ids, keys and states only; the leak guard checks that anyway.
                        let mut data = serde_json::to_value(&event).expect("BUG: events always serialize");
                        let actor = open.principal.actor();
                        if open.state.secrets.mask_json(open.workspace_id, &mut data, "event stream", &actor).await.is_err() {
                            return None;
                        }
                        let data = data.to_string();
                        return Some((Ok(SseEvent::default().event(event.name()).data(data)), open));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = open.recheck.tick() => {
                    if open.principal.recheck(&open.state, open.workspace_id, Scope::SecretsList).await.is_err() {
                        return None;
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What an open event stream holds.
struct EventStream {
    state: AppState,
    principal: Principal,
    workspace_id: Uuid,
    receiver: tokio::sync::broadcast::Receiver<crate::model::Event>,
    recheck: tokio::time::Interval,
    _slot: crate::server::web::streams::StreamSlot,
}
