//! The server side of the Studio's server functions: the same services and the same
//! authorization as the REST API, with the request and state taken from the Leptos context.

use axum::http::header::{ACCEPT, RETRY_AFTER, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::ResponseOptions;
use uuid::Uuid;

use std::collections::HashMap;

use crate::model::{
    AuditEvent, CreatedToken, CurrentUser, DeletedRow, DocumentKind, Member, PendingRequest, Role, RunStatus,
    SecretItem, SecretRow, SessionInfo, TokenInfo, WorkflowRun, WorkspaceItem, WorkspaceSecrets,
};
use crate::server::domain::{Actor, Scope, Submission};
use crate::server::error::AppError;
use crate::server::service::sessions::{Client, SessionUser};
use crate::server::service::{access, audit};
use crate::server::web::principal::Principal;
use crate::server::web::state::AppState;
use crate::server::web::{cookies, csrf};

mod history;
mod webhooks;
pub use history::*;
pub use webhooks::*;

/// The application state, provided to every render and server function in `main`.
pub fn state() -> AppState {
    use_context::<AppState>().expect("BUG: AppState is provided by the Leptos routes in server::app_router")
}

fn parts() -> Parts {
    use_context::<Parts>().expect("BUG: leptos_axum provides the request parts to every server function and render")
}

/// Whether this request came over TLS (its cookies are then `Secure` and `__Host-` named).
fn secure(parts: &Parts) -> bool {
    cookies::is_secure(&parts.headers, state().config.secure_cookies)
}

/// The session cookie value of this request, if any.
fn session_cookie(parts: &Parts) -> Option<String> {
    cookies::session_cookie_value(&parts.headers, secure(parts))
}

/// Where this request comes from: the client address (see `cookies::client_address`) and
/// the user agent.
fn client(parts: &Parts) -> (String, Option<String>) {
    let address = cookies::client_address(&parts.headers, &parts.extensions, state().config.trusted_proxies);
    let agent = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|a| a.chars().take(200).collect());
    (address, agent)
}

/// The signed-in user of this request, or 401. Writes also pass the same-origin check.
pub async fn signed_in() -> Result<SessionUser, AppError> {
    let state = state();
    let parts = parts();
    let cookie = session_cookie(&parts).ok_or(AppError::Unauthorized)?;
    let user = state.sessions.session_user(&cookie).await?;
    csrf::check_same_origin(&parts.method, &parts.headers)?;
    Ok(user)
}

/// The CSRF token of this request's session, for the hidden field of Studio forms: the one
/// [`provide_csrf_token`] made for the page, else made from the request.
pub fn csrf_token() -> String {
    match use_context::<PageCsrfToken>() {
        Some(PageCsrfToken(token)) => token.to_string(),
        None => request_csrf_token(),
    }
}

/// Made once per page render: a page of 100 secrets has three hundred forms, and each would
/// otherwise copy the request's headers, find the cookie and hash it again.
pub fn provide_csrf_token() {
    provide_context(PageCsrfToken(request_csrf_token().into()));
}

/// The token of the page being rendered (see [`provide_csrf_token`]).
#[derive(Clone)]
struct PageCsrfToken(std::sync::Arc<str>);

fn request_csrf_token() -> String {
    use_context::<Parts>().and_then(|parts| session_cookie(&parts)).map(|c| csrf::csrf_token(&c)).unwrap_or_default()
}

/// The signed-in user, or `None`.
pub async fn current_user() -> Result<Option<CurrentUser>, AppError> {
    match signed_in().await {
        Ok(user) => Ok(Some(CurrentUser { id: user.user_id, username: user.username, is_admin: user.is_admin })),
        Err(AppError::Unauthorized) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Signs in and sets a fresh session cookie (a new session id every time); the session this
/// browser held before ends.
pub async fn sign_in(username: &str, password: &str) -> Result<(), AppError> {
    let state = state();
    let parts = parts();
    csrf::check_same_origin(&parts.method, &parts.headers)?;
    let (address, user_agent) = client(&parts);
    let from = Client { address: &address, user_agent: user_agent.as_deref() };
    let previous = session_cookie(&parts);
    let session = state.sessions.sign_in(username, password, &from, previous.as_deref()).await?;
    let secure = secure(&parts);
    let max_age = state.sessions.session_hours() * 3600;
    set_cookie(&cookies::session_cookie(&session.cookie_value, max_age, secure));
    set_cookie(&cookies::csrf_cookie(&csrf::csrf_token(&session.cookie_value), max_age, secure));
    Ok(())
}

/// Ends the session (if any) and clears the cookie.
pub async fn sign_out() -> Result<(), AppError> {
    let state = state();
    if let Ok(user) = signed_in().await {
        state.sessions.sign_out(user.session_id).await?;
    }
    clear_cookies();
    Ok(())
}

/// Ends every session of the signed-in user, this one included, and clears the cookie.
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    let user = signed_in().await?;
    state().sessions.end_all(&user).await?;
    clear_cookies();
    Ok(())
}

/// The signed-in user's open sessions (when, from where), newest first.
pub async fn my_sessions() -> Result<Vec<SessionInfo>, AppError> {
    let user = signed_in().await?;
    state().sessions.list(&user).await
}

/// Ends one of the signed-in user's sessions; another user's is a 404.
pub async fn revoke_session(session_id: Uuid) -> Result<(), AppError> {
    let user = signed_in().await?;
    state().sessions.revoke(&user, session_id).await
}

fn clear_cookies() {
    let secure = secure(&parts());
    set_cookie(&cookies::session_cookie("", 0, secure));
    set_cookie(&cookies::csrf_cookie("", 0, secure));
}

/// The workspaces the signed-in user belongs to.
pub async fn workspaces() -> Result<Vec<WorkspaceItem>, AppError> {
    let user = signed_in().await?;
    access::workspaces_of_user(&state().db, user.user_id).await
}

/// A workspace and one page of its secrets whose key contains `filter`, authorized exactly as
/// `GET .../secrets` is. Pages count from 1; one past the last shows the last.
pub async fn workspace_secrets(workspace_id: Uuid, filter: &str, page: usize) -> Result<WorkspaceSecrets, AppError> {
    let state = state();
    let user = signed_in().await?;
    let workspace = user.workspace(&state.db, workspace_id).await?;
    Principal::User(user).authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    let page = state.secrets.page(workspace_id, filter, page).await?;
    let mut hosts: HashMap<String, Vec<String>> =
        crate::server::store::egress_by_key(&state.db, workspace_id).await?.into_iter().collect();
    let secrets = page
        .secrets
        .into_iter()
        .map(|s| SecretRow {
            hosts: hosts.remove(&s.key).unwrap_or_default(),
            id: s.id,
            key: s.key,
            has_value: s.has_value,
            version: s.version,
            updated: s.updated_at.into(),
        })
        .collect();
    let pending =
        state.workflows.list(workspace_id, Some(RunStatus::Waiting)).await?.iter().map(pending_request).collect();
    let deleted = state
        .secrets
        .deleted(workspace_id)
        .await?
        .into_iter()
        .map(|d| DeletedRow { key: d.key, deleted: d.deleted_at.into(), deleted_by: d.deleted_by })
        .collect();
    Ok(WorkspaceSecrets {
        workspace,
        secrets,
        total: page.total,
        matching: page.matching,
        page: page.number,
        pending,
        globals: state.secrets.global_keys(workspace_id).await?,
        deleted,
    })
}

/// The keys a waiting run asks for: those of its latest SecretRequestDocument.
fn pending_request(run: &WorkflowRun) -> PendingRequest {
    let keys = run
        .documents
        .iter()
        .rev()
        .find(|d| d.kind == DocumentKind::SecretRequestDocument)
        .map(|d| {
            d.content["variables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    PendingRequest { run_id: run.id, workflow: run.workflow.clone(), keys }
}

fn set_cookie(cookie: &str) {
    if let Some(response) = use_context::<ResponseOptions>() {
        response.append_header(
            SET_COOKIE,
            HeaderValue::from_str(cookie).expect("BUG: a built cookie is a valid header value"),
        );
    }
}

/// Whether this server function call is a plain form post from a browser without JavaScript
/// (`Accept: text/html`), which is answered with a redirect to a page; an island calls with
/// JavaScript and handles the answer itself.
pub fn is_form_post() -> bool {
    use_context::<Parts>().is_some_and(|parts| {
        parts.method == axum::http::Method::POST
            && parts
                .headers
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
    })
}

/// Sends a browser without JavaScript to `path` after its form post (an island stays where it is).
pub fn back_to(path: &str) {
    if is_form_post() {
        leptos_axum::redirect(path);
    }
}

/// Turns an error into the server function's error, answering with the same HTTP status (and
/// `Retry-After`) as the REST error it mirrors. A plain form post from a browser without
/// JavaScript (`Accept: text/html`) keeps the redirect back to its page that carries the error,
/// so the page can show it.
pub fn fail(err: AppError) -> crate::model::ApiError {
    // A page render (GET) sets its status from the error too; only a form's POST redirects.
    let form_post = is_form_post();
    if let Some(response) = use_context::<ResponseOptions>().filter(|_| !form_post) {
        response.set_status(err.status_code());
        if let AppError::TooManyRequests(secs) = err {
            response.insert_header(RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    err.into()
}

/// The signed-in user as a principal authorized for `scope` in `workspace_id`.
pub(crate) async fn authorized(workspace_id: Uuid, scope: Scope) -> Result<Principal, AppError> {
    let principal = Principal::User(signed_in().await?);
    principal.authorize(&state().db, workspace_id, scope).await?;
    Ok(principal)
}

/// Adds a secret from the Studio form.
pub async fn create_secret(workspace_id: Uuid, key: &str, value: String) -> Result<SecretItem, AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    let state = state();
    let key = state.secrets.parse_key(key.trim())?;
    let value = state.secrets.parse_value(value)?;
    state.secrets.create(workspace_id, &key, &value, &principal.actor()).await
}

/// Replaces a secret's value from the Studio; with the version the page showed, refused (412)
/// when someone changed it since.
pub async fn update_secret(
    workspace_id: Uuid,
    id: Uuid,
    value: String,
    expected: Option<i64>,
) -> Result<SecretItem, AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    let state = state();
    let value = state.secrets.parse_value(value)?;
    state.secrets.update_if(workspace_id, id, Some(&value), expected, &principal.actor()).await
}

/// Replaces where a secret may be sent, from the Studio: one origin a line.
pub async fn set_egress(workspace_id: Uuid, id: Uuid, hosts: &str) -> Result<crate::model::Egress, AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    let hosts: Vec<String> = hosts.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    crate::server::service::usage::set_egress(&state().db, workspace_id, id, &hosts, &principal.actor()).await
}

/// Deletes a secret from the Studio (restorable for the retention window); with the version
/// the page showed, refused (412) when someone changed it since.
pub async fn delete_secret(workspace_id: Uuid, id: Uuid, expected: Option<i64>) -> Result<(), AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    state().secrets.delete_if(workspace_id, id, expected, &principal.actor()).await
}

/// One run with its documents.
pub async fn run(workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, AppError> {
    authorized(workspace_id, Scope::SecretsList).await?;
    state().workflows.view(workspace_id, run_id).await
}

/// Submits a request form: every filled-in value is stored and the run continues, in one
/// transaction. Blank fields are left out (those keys stay missing).
pub async fn submit_request(
    workspace_id: Uuid,
    run_id: Uuid,
    values: HashMap<String, String>,
) -> Result<WorkflowRun, AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    let state = state();
    principal.authorize(&state.db, workspace_id, Scope::WorkflowsRun).await?;
    let mut filled: Vec<(String, String)> = values.into_iter().filter(|(_, value)| !value.is_empty()).collect();
    filled.sort_by(|a, b| a.0.cmp(&b.0));
    let submission = Submission::from_pairs(filled, state.secrets.limits())?;
    state.workflows.submit(workspace_id, run_id, submission, &principal.actor()).await
}

/// Declines a request: the run is cancelled.
pub async fn decline_request(workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, AppError> {
    let principal = authorized(workspace_id, Scope::WorkflowsRun).await?;
    state().workflows.cancel(workspace_id, run_id, "declined in the Studio", &principal.actor()).await
}

/// A workspace's audit log, newest first, optionally filtered by action, actor or key.
pub async fn audit_log(workspace_id: Uuid, search: Option<String>) -> Result<Vec<AuditEvent>, AppError> {
    authorized(workspace_id, Scope::SecretsList).await?;
    audit::workspace_log(&state().secrets, workspace_id, search.as_deref()).await
}

/// The signed-in user, who must own `workspace_id` (a non-member gets 404, others 403).
async fn owner_of(workspace_id: Uuid) -> Result<SessionUser, AppError> {
    let user = signed_in().await?;
    let workspace = user.workspace(&state().db, workspace_id).await?;
    if workspace.role != Role::Owner {
        return Err(AppError::Forbidden("only an owner of this workspace may do this".into()));
    }
    Ok(user)
}

/// The workspace's API tokens (owners only; never the tokens themselves).
pub async fn tokens(workspace_id: Uuid) -> Result<Vec<TokenInfo>, AppError> {
    owner_of(workspace_id).await?;
    access::tokens(&state().db, workspace_id).await
}

/// Creates an API token; its text is returned this once.
pub async fn create_token(
    workspace_id: Uuid,
    name: &str,
    scopes: &[Scope],
    expires_in_days: Option<i64>,
) -> Result<CreatedToken, AppError> {
    let owner = Actor::user(&owner_of(workspace_id).await?.username);
    let (row, token) = access::create_token(&state().db, workspace_id, name, scopes, expires_in_days, &owner).await?;
    Ok(CreatedToken { info: access::token_info(&row), token })
}

/// Revokes one of the workspace's tokens.
pub async fn revoke_token(workspace_id: Uuid, token_id: Uuid) -> Result<(), AppError> {
    let owner = Actor::user(&owner_of(workspace_id).await?.username);
    access::revoke_token(&state().db, token_id, Some(workspace_id), &owner).await
}

/// The workspace's members (owners only).
pub async fn members(workspace_id: Uuid) -> Result<Vec<Member>, AppError> {
    owner_of(workspace_id).await?;
    access::members(&state().db, workspace_id).await
}

/// Adds an existing user to the workspace with a role.
pub async fn add_member(workspace_id: Uuid, username: &str, role: Role) -> Result<(), AppError> {
    let owner = Actor::user(&owner_of(workspace_id).await?.username);
    access::add_member(&state().db, workspace_id, username, role, &owner).await
}

/// Changes a member's role, or removes the member; the last owner stays.
pub async fn change_member(workspace_id: Uuid, user_id: Uuid, role: Option<Role>) -> Result<(), AppError> {
    let owner = Actor::user(&owner_of(workspace_id).await?.username);
    access::change_member(&state().db, workspace_id, user_id, role, &owner).await
}

/// Changes the signed-in user's password after checking the current one (counted like a
/// sign-in); every other session of the user ends.
pub async fn change_password(current: &str, new: &str) -> Result<(), AppError> {
    let user = signed_in().await?;
    let (address, _) = client(&parts());
    state().sessions.change_password(&user, current, new, &address).await
}

/// Creates a user (administrators only); returns the generated password when none was given.
pub async fn create_user(username: &str, password: Option<String>, is_admin: bool) -> Result<Option<String>, AppError> {
    let user = signed_in().await?;
    if !user.is_admin {
        return Err(AppError::Forbidden("only an administrator may create users".into()));
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(password) => (password, false),
        None => (access::generate_password(), true),
    };
    access::create_user(&state().db, username, &password, is_admin).await?;
    Ok(generated.then_some(password))
}

/// The signed-in user's recent sign-ins and failed attempts.
pub async fn my_sign_ins() -> Result<Vec<AuditEvent>, AppError> {
    let user = signed_in().await?;
    audit::sign_ins(&state().db, &user.username).await
}
