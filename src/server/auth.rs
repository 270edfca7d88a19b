//! Who is calling and what they may do: argon2id passwords, database-backed Studio sessions,
//! API tokens (hash only, compared in constant time) and the one authorization rule that every
//! route and server function applies.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::model::{Role, WorkspaceItem};
use crate::server::db::Db;
use crate::server::domain::{Scope, Username};
use crate::server::error::AppError;
use crate::server::state::AppState;
use crate::server::store::{self, TokenRow};

/// Name of the Studio session cookie.
pub const SESSION_COOKIE: &str = "lss_session";
/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "lss_";
/// Failed sign-ins allowed per username within [`SIGN_IN_WINDOW_SECS`].
pub const MAX_SIGN_IN_FAILURES: i64 = 10;
/// The sign-in rate-limit window.
pub const SIGN_IN_WINDOW_SECS: i64 = 15 * 60;

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
                let workspace = store::workspace_of_user(db, user.user_id, workspace_id).await?.ok_or(AppError::NotFound)?;
                role_scopes(workspace.role).contains(&scope)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("this requires the {} scope", scope.as_str())))
        }
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

// ---- passwords ---------------------------------------------------------------------------

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("failed to hash a password: {e}")))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()).unwrap_or(false)
}

/// A hash to verify against when the username does not exist, so both failures cost the same.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").expect("BUG: hashing a constant cannot fail"))
}

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
    let hash = hash_password(password)?;
    let id = Uuid::new_v4();
    store::insert_user(db, id, username.as_str(), &hash, is_admin).await?;
    Ok(id)
}

// ---- sessions ----------------------------------------------------------------------------

/// A new session: the cookie value to set (shown to the browser only) and its expiry.
pub struct NewSession {
    pub cookie_value: String,
    pub expires_at: DateTime<Utc>,
}

/// Checks credentials and opens a fresh session. Silent about which part was wrong; rate
/// limited per username across instances (the failures live in the database).
#[tracing::instrument(skip(db, password), err)]
pub async fn sign_in(db: &Db, username: &str, password: &str, session_hours: i64) -> Result<NewSession, AppError> {
    let Ok(username) = Username::parse(username) else {
        verify_password(dummy_hash(), password);
        return Err(AppError::InvalidCredentials);
    };
    let since = Utc::now() - Duration::seconds(SIGN_IN_WINDOW_SECS);
    if store::sign_in_failures_since(db, username.as_str(), since).await? >= MAX_SIGN_IN_FAILURES {
        return Err(AppError::TooManyRequests(SIGN_IN_WINDOW_SECS as u64));
    }
    let user = store::user_by_username(db, username.as_str()).await?;
    let hash = user.as_ref().map(|u| u.password_hash.as_str()).unwrap_or(dummy_hash());
    let verified = verify_password(hash, password);
    let Some(user) = user.filter(|_| verified) else {
        store::record_sign_in_failure(db, username.as_str()).await?;
        return Err(AppError::InvalidCredentials);
    };

    let id = Uuid::new_v4();
    let secret = random_secret();
    let expires_at = Utc::now() + Duration::hours(session_hours);
    store::start_session(db, id, &sha256(&secret), user.id, &user.username, expires_at).await?;
    Ok(NewSession { cookie_value: format!("{}.{}", id.simple(), secret), expires_at })
}

/// Resolves a session cookie value to its user; 401 when unknown, wrong or expired.
pub async fn session_user(db: &Db, cookie_value: &str) -> Result<SessionUser, AppError> {
    let (id, secret) = cookie_value.split_once('.').ok_or(AppError::Unauthorized)?;
    let session_id = Uuid::try_parse(id).map_err(|_| AppError::Unauthorized)?;
    let row = store::session_by_id(db, session_id).await?.ok_or(AppError::Unauthorized)?;
    let matches: bool = sha256(secret).ct_eq(&row.secret_hash).into();
    if !matches || row.expires_at <= Utc::now() {
        return Err(AppError::Unauthorized);
    }
    Ok(SessionUser { session_id, user_id: row.user_id, username: row.username, is_admin: row.is_admin })
}

/// Ends a session.
pub async fn sign_out(db: &Db, session_id: Uuid) -> Result<(), AppError> {
    store::delete_session(db, session_id).await
}

/// The `Set-Cookie` value that stores a session (HttpOnly, SameSite=Strict, Secure behind TLS).
pub fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    cookie::Cookie::build((SESSION_COOKIE, value.to_string()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// Name of the cookie that carries the CSRF token to the browser (readable by the page's
/// script so hydrated forms render the same hidden field as the server did).
pub const CSRF_COOKIE: &str = "lss_csrf";

/// The CSRF token of a session: derived from the session cookie, so only someone holding the
/// session can know it, and nothing needs storing.
pub fn csrf_token(session_cookie_value: &str) -> String {
    B64URL.encode(Sha256::digest(format!("loopstack-secrets csrf v1:{session_cookie_value}").as_bytes()))
}

/// Whether `presented` is the CSRF token of the session (constant time).
pub fn csrf_matches(session_cookie_value: &str, presented: &str) -> bool {
    csrf_token(session_cookie_value).as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The `Set-Cookie` value carrying the CSRF token (not HttpOnly: the page reads it).
pub fn csrf_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    cookie::Cookie::build((CSRF_COOKIE, token.to_string()))
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// Reads the session cookie from request headers.
pub fn session_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// Whether the request came over TLS (directly configured or through a proxy that says so).
pub fn is_secure(headers: &HeaderMap, configured: bool) -> bool {
    configured || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
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
    let entry = store::Audit { workspace_id: Some(workspace_id), actor, action: "token.created", key: None, detail: Some(&detail) };
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
    let matches: bool = sha256(secret).ct_eq(&row.secret_hash).into();
    let expired = row.expires_at.is_some_and(|at| at <= Utc::now());
    if !matches || row.revoked_at.is_some() || expired {
        return Err(AppError::Unauthorized);
    }
    let scopes = row.scopes.split_whitespace().filter_map(|s| Scope::parse(s).ok()).collect();
    Ok(TokenPrincipal { token_id, workspace_id: row.workspace_id, scopes })
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Authenticates a request from its method and headers: a bearer token first, else the
/// session cookie (with the same-origin check for writes).
pub async fn authenticate(db: &Db, method: &Method, headers: &HeaderMap) -> Result<Principal, AppError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| AppError::Unauthorized)?;
        let token = auth.strip_prefix("Bearer ").ok_or(AppError::Unauthorized)?;
        return Ok(Principal::Token(token_principal(db, token.trim()).await?));
    }
    let cookie = session_cookie_value(headers).ok_or(AppError::Unauthorized)?;
    let user = session_user(db, &cookie).await?;
    check_same_origin(method, headers)?;
    Ok(Principal::User(user))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(&state.db, &parts.method, &parts.headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsf"));
    }

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

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let cookie = session_cookie("abc", 60, true);
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Secure"));
        assert!(!session_cookie("abc", 60, false).contains("Secure"));
    }
}
