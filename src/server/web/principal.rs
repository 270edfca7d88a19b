//! Who is calling and what they may do: the principal of a request (a bearer token, else the
//! Studio session cookie), and the one authorization rule that every route and server function
//! applies.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use uuid::Uuid;

use crate::model::Role;
use crate::server::domain::{Actor, Scope};
use crate::server::error::AppError;
use crate::server::service::access::{self, TokenPrincipal};
use crate::server::service::sessions::SessionUser;
use crate::server::store::Db;
use crate::server::web::cookies;
use crate::server::web::csrf::check_same_origin;
use crate::server::web::state::AppState;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub enum Principal {
    User(SessionUser),
    Token(TokenPrincipal),
}

/// Scopes a member's role grants in the Studio. Values are never read through a session.
pub fn role_scopes(role: Role) -> &'static [Scope] {
    match role {
        Role::Viewer => &[Scope::SecretsList],
        Role::Editor => &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall, Scope::WorkflowsRun],
        Role::Owner => {
            &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall, Scope::WorkflowsRun, Scope::WebhooksManage]
        }
    }
}

impl Principal {
    /// The one authorization rule: a workspace the caller may not see is a 404 (the same answer
    /// as a missing one); a visible workspace without the scope is a 403.
    pub async fn authorize(&self, db: &Db, workspace_id: Uuid, scope: Scope) -> Result<(), AppError> {
        let allowed = match self {
            Principal::Token(token) => {
                if token.workspace_id != workspace_id {
                    return Err(AppError::NotFound);
                }
                token.scopes.contains(&scope)
            }
            Principal::User(user) => {
                let workspace = access::workspace_of_user(db, user.user_id, workspace_id).await?;
                role_scopes(workspace.role).contains(&scope)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("this requires the {} scope", scope.as_str())))
        }
    }

    /// Only a workspace's owners, signed in to the Studio: a token (or another member) is a
    /// 403, a workspace the caller may not see a 404.
    pub async fn authorize_owner(&self, db: &Db, workspace_id: Uuid) -> Result<(), AppError> {
        let owner = match self {
            Principal::Token(token) if token.workspace_id != workspace_id => return Err(AppError::NotFound),
            Principal::Token(_) => false,
            Principal::User(user) => {
                access::workspace_of_user(db, user.user_id, workspace_id).await?.role == Role::Owner
            }
        };
        if owner {
            Ok(())
        } else {
            Err(AppError::Forbidden("only the workspace's owners, signed in, can do this".into()))
        }
    }

    /// The id of the credential (token or session), for per-credential limits.
    pub fn credential_id(&self) -> Uuid {
        match self {
            Principal::User(user) => user.session_id,
            Principal::Token(token) => token.token_id,
        }
    }

    /// Authorizes again for a request that stays open (an event stream, a long-poll): the
    /// token must still be unrevoked and unexpired, the session still signed in and unexpired,
    /// and the rule of [`Principal::authorize`] must still hold (a removed member is a 404).
    pub async fn recheck(&self, state: &AppState, workspace_id: Uuid, scope: Scope) -> Result<(), AppError> {
        // What was committed while the call waited counts from here on.
        crate::server::store::arrive_again();
        let standing = match self {
            Principal::Token(token) => access::token_standing(&state.db, token.token_id).await?,
            Principal::User(user) => state.sessions.session_alive(user.session_id).await?,
        };
        if !standing {
            return Err(AppError::Unauthorized);
        }
        self.authorize(&state.db, workspace_id, scope).await
    }

    /// A label for `created_by` / `updated_by` and logs: ids only, never credentials.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::User(user) => Actor::user(&user.username),
            Principal::Token(token) => Actor::token(token.token_id),
        }
    }
}

/// Authenticates a request from its method and headers: a bearer token first, else the
/// session cookie (with the same-origin check for writes).
pub async fn authenticate(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<Principal, AppError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| AppError::Unauthorized)?;
        let token = auth.strip_prefix("Bearer ").ok_or(AppError::Unauthorized)?;
        return Ok(Principal::Token(access::token_principal(&state.db, token.trim()).await?));
    }
    let secure = cookies::is_secure(headers, state.config.secure_cookies);
    let cookie = cookies::session_cookie_value(headers, secure).ok_or(AppError::Unauthorized)?;
    let user = state.sessions.session_user(&cookie).await?;
    check_same_origin(method, headers)?;
    Ok(Principal::User(user))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.method, &parts.headers).await
    }
}
