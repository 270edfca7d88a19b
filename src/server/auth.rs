//! Who is calling and what they may do: API tokens (hash only, compared in constant time), the
//! CSRF token of a session, the same-origin rule for cookie-authenticated writes, and the one
//! authorization rule that every route and server function applies. Sessions and sign-in are
//! in `sessions`, password hashing in `passwords`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::{Role, WorkspaceItem};
use crate::server::db::Db;
use crate::server::domain::{Scope, Username};
use crate::server::error::AppError;
use crate::server::passwords::constant_time_eq;
use crate::server::sessions;
use crate::server::state::AppState;
use crate::server::store::{self, TokenRow};

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "lss_";

/// A signed-in Studio user.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub is_admin: bool,
}

/// An authenticated API token.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    pub token_id: Uuid,
    pub workspace_id: Uuid,
    pub scopes: Vec<Scope>,
}

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
        Role::Editor | Role::Owner => &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall, Scope::WorkflowsRun],
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
                let workspace =
                    store::workspace_of_user(db, user.user_id, workspace_id).await?.ok_or(AppError::NotFound)?;
                role_scopes(workspace.role).contains(&scope)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("this requires the {} scope", scope.as_str())))
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
    pub async fn recheck(&self, db: &Db, workspace_id: Uuid, scope: Scope) -> Result<(), AppError> {
        let standing = match self {
            Principal::Token(token) => store::token_by_id(db, token.token_id)
                .await?
                .is_some_and(|row| row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > Utc::now())),
            Principal::User(user) => sessions::session_alive(db, user.session_id).await?,
        };
        if !standing {
            return Err(AppError::Unauthorized);
        }
        self.authorize(db, workspace_id, scope).await
    }

    /// A label for `created_by` / `updated_by` and logs: ids only, never credentials.
    pub fn actor(&self) -> crate::server::secrets::Actor {
        crate::server::secrets::Actor(match self {
            Principal::User(user) => format!("user:{}", user.username),
            Principal::Token(token) => format!("token:{}", token.token_id),
        })
    }
}

impl SessionUser {
    /// The workspace as this user sees it, or 404.
    pub async fn workspace(&self, db: &Db, workspace_id: Uuid) -> Result<WorkspaceItem, AppError> {
        store::workspace_of_user(db, self.user_id, workspace_id).await?.ok_or(AppError::NotFound)
    }
}

// ---- users -------------------------------------------------------------------------------

/// A random password for generated credentials: 24 characters of base64url.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// Creates a user; 400 for a bad username or a password under 8 characters, 409 when taken.
pub async fn create_user(db: &Db, username: &str, password: &str, is_admin: bool) -> Result<Uuid, AppError> {
    let username = Username::parse(username)?;
    if password.chars().count() < 8 {
        return Err(AppError::BadRequest("password must be at least 8 characters".into()));
    }
    let hash = crate::server::passwords::hash_password_blocking(Zeroizing::new(password.to_string())).await?;
    let id = Uuid::new_v4();
    store::insert_user(db, id, username.as_str(), &hash, is_admin).await?;
    Ok(id)
}

// ---- CSRF --------------------------------------------------------------------------------

/// The CSRF token of a session: derived from the session cookie, so only someone holding the
/// session can know it, and nothing needs storing.
pub fn csrf_token(session_cookie_value: &str) -> String {
    B64URL.encode(Sha256::digest(format!("loopstack-secrets csrf v1:{session_cookie_value}").as_bytes()))
}

/// Whether `presented` is the CSRF token of the session (constant time).
pub fn csrf_matches(session_cookie_value: &str, presented: &str) -> bool {
    constant_time_eq(csrf_token(session_cookie_value).as_bytes(), presented.as_bytes())
}

/// CSRF defence for cookie-authenticated writes (on top of the SameSite=Strict cookie): the
/// request must show it comes from this origin, by `Sec-Fetch-Site: same-origin` or an
/// `Origin` equal to the host. Browsers send both on every POST; a request with neither, or
/// with another site's, is refused. Bearer-token calls are not affected: browsers never
/// attach tokens on their own.
pub fn check_same_origin(method: &Method, headers: &HeaderMap) -> Result<(), AppError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refused = || Err(AppError::Forbidden("cross-site request refused".into()));
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin") {
        return refused();
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            if origin_host.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                refused()
            }
        }
        None if fetch_site == Some("same-origin") => Ok(()),
        None => refused(),
    }
}

// ---- API tokens --------------------------------------------------------------------------

/// Creates a token bound to one workspace; returns its row and the token text (shown once).
pub async fn create_token(
    db: &Db,
    workspace_id: Uuid,
    name: &str,
    scopes: &[Scope],
    expires_in_days: Option<i64>,
    actor: &str,
) -> Result<(TokenRow, String), AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::BadRequest("token name must be 1 to 100 characters".into()));
    }
    if scopes.is_empty() {
        return Err(AppError::BadRequest("a token needs at least one scope".into()));
    }
    if !store::workspace_exists(db, workspace_id).await? {
        return Err(AppError::NotFound);
    }
    let id = Uuid::new_v4();
    let secret = random_secret();
    let mut scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scope_names.sort_unstable();
    scope_names.dedup();
    let now = Utc::now();
    let row = TokenRow {
        id,
        workspace_id,
        name: name.to_string(),
        secret_hash: sha256(&secret),
        scopes: scope_names.join(" "),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + Duration::days(d)),
        revoked_at: None,
    };
    let mut tx = db.begin().await?;
    store::insert_token(&mut tx, &row).await?;
    let detail = format!("token {} '{}' with {}", row.id, row.name, row.scopes);
    let entry = store::Audit {
        workspace_id: Some(workspace_id),
        actor,
        action: "token.created",
        key: None,
        detail: Some(&detail),
    };
    store::audit_in(&mut tx, &entry).await?;
    tx.commit().await?;
    Ok((row, format!("{TOKEN_PREFIX}{}_{}", id.simple(), secret)))
}

/// Resolves a bearer token; 401 when malformed, unknown, wrong, revoked or expired.
pub async fn token_principal(db: &Db, token: &str) -> Result<TokenPrincipal, AppError> {
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(AppError::Unauthorized)?;
    let (id, secret) = rest.split_once('_').ok_or(AppError::Unauthorized)?;
    let token_id = Uuid::try_parse(id).map_err(|_| AppError::Unauthorized)?;
    let row = store::token_by_id(db, token_id).await?.ok_or(AppError::Unauthorized)?;
    let expired = row.expires_at.is_some_and(|at| at <= Utc::now());
    if !constant_time_eq(&sha256(secret), &row.secret_hash) || row.revoked_at.is_some() || expired {
        return Err(AppError::Unauthorized);
    }
    let scopes = row.scopes.split_whitespace().filter_map(|s| Scope::parse(s).ok()).collect();
    Ok(TokenPrincipal { token_id, workspace_id: row.workspace_id, scopes })
}

/// 256 random bits, base64url: the secret part of tokens and session cookies.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// The stored form of a token or session secret.
pub(crate) fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Authenticates a request from its method and headers: a bearer token first, else the
/// session cookie (with the same-origin check for writes). `secure_cookies` is the configured
/// setting (see [`sessions::is_secure`]).
pub async fn authenticate(
    db: &Db,
    method: &Method,
    headers: &HeaderMap,
    secure_cookies: bool,
) -> Result<Principal, AppError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| AppError::Unauthorized)?;
        let token = auth.strip_prefix("Bearer ").ok_or(AppError::Unauthorized)?;
        return Ok(Principal::Token(token_principal(db, token.trim()).await?));
    }
    let secure = sessions::is_secure(headers, secure_cookies);
    let cookie = sessions::session_cookie_value(headers, secure).ok_or(AppError::Unauthorized)?;
    let user = sessions::session_user(db, &cookie).await?;
    check_same_origin(method, headers)?;
    Ok(Principal::User(user))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(&state.db, &parts.method, &parts.headers, state.config.secure_cookies).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cross_site_write_is_refused_and_a_same_site_one_passes() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        headers.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_ok());
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_err());
        assert!(check_same_origin(&Method::GET, &headers).is_ok(), "reads are not writes");
        headers.remove(header::ORIGIN);
        assert!(check_same_origin(&Method::POST, &headers).is_err(), "a write must show where it comes from");
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_ok());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_err());
    }
}
