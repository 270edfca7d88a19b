//! Studio sessions: signing in (limited per username and per client address, the password
//! checked on the hashing threads), the session and CSRF cookies, a user's list of sessions and
//! the ways to end them. Sessions live in the database, so every instance sees the same ones.

use axum::http::{header, Extensions, HeaderMap};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::SessionInfo;
use crate::server::auth::{random_secret, sha256, SessionUser};
use crate::server::db::Db;
use crate::server::domain::Username;
use crate::server::error::AppError;
use crate::server::passwords::constant_time_eq;
use crate::server::state::AppState;
use crate::server::store::{self, AttemptLimits, SessionOrigin};

/// Name of the session cookie over plain HTTP.
pub const SESSION_COOKIE: &str = "lss_session";
/// Name of the session cookie when it is `Secure`: the `__Host-` prefix makes browsers refuse
/// it unless it was set by this host, over TLS, for `/`, so a sibling subdomain cannot plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-lss_session";
/// Name of the cookie that carries the CSRF token to the page's script, over plain HTTP.
pub const CSRF_COOKIE: &str = "lss_csrf";
/// The same, when cookies are `Secure`.
pub const SECURE_CSRF_COOKIE: &str = "__Host-lss_csrf";
/// The window of the sign-in limits.
pub const SIGN_IN_WINDOW_SECS: i64 = 15 * 60;

/// Where a sign-in comes from.
pub struct Client<'a> {
    /// The client's address (see [`client_address`]).
    pub address: &'a str,
    pub user_agent: Option<&'a str>,
}

/// A new session: the cookie value to set (shown to the browser only) and its expiry.
pub struct NewSession {
    pub cookie_value: String,
    pub expires_at: DateTime<Utc>,
}

/// The limits on password checks, from the configuration.
fn attempt_limits(state: &AppState) -> AttemptLimits {
    AttemptLimits {
        window_secs: SIGN_IN_WINDOW_SECS,
        per_user: state.config.sign_in_failures_per_user,
        per_client: state.config.sign_in_failures_per_address,
    }
}

/// Checks credentials and opens a fresh session, ending the one this browser held before
/// (`previous_cookie`). Silent about which part was wrong. Every attempt takes a hashing permit
/// first (429 at once when none is free) and is counted per username and per client address
/// before the password is checked (429 past either limit).
#[tracing::instrument(skip(state, password, client, previous_cookie), err)]
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    client: &Client<'_>,
    previous_cookie: Option<&str>,
) -> Result<NewSession, AppError> {
    let permit = state.hasher.reserve()?;
    let parsed = Username::parse(username).ok();
    // An invalid name cannot be a user's, but its attempts still count against the client.
    let name =
        parsed.as_ref().map(|u| u.as_str().to_string()).unwrap_or_else(|| username.trim().chars().take(64).collect());
    if !store::claim_sign_in_attempt(&state.db, &name, client.address, &attempt_limits(state)).await? {
        return Err(AppError::TooManyRequests(SIGN_IN_WINDOW_SECS as u64));
    }
    let user = match &parsed {
        Some(username) => store::user_by_username(&state.db, username.as_str()).await?,
        None => None,
    };
    let verified =
        permit.verify(user.as_ref().map(|u| u.password_hash.clone()), Zeroizing::new(password.to_string())).await?;
    let Some(user) = user.filter(|_| verified) else {
        store::audit_sign_in_failure(&state.db, &name, client.address, "sign-in").await?;
        return Err(AppError::InvalidCredentials);
    };

    let replaces = match previous_cookie {
        Some(cookie) => session_user(&state.db, cookie).await.ok().map(|old| old.session_id),
        None => None,
    };
    let id = Uuid::new_v4();
    let secret = random_secret();
    let expires_at = Utc::now() + Duration::hours(state.config.session_hours);
    let origin = SessionOrigin { client: client.address, user_agent: client.user_agent };
    store::start_session(&state.db, id, &sha256(&secret), user.id, &user.username, expires_at, &origin, replaces)
        .await?;
    Ok(NewSession { cookie_value: format!("{}.{}", id.simple(), secret), expires_at })
}

/// Changes a signed-in user's password. The current password is checked like a sign-in (a
/// hashing permit, and the attempt counted per username and client); every other session of
/// the user ends with the change.
pub async fn change_password(
    state: &AppState,
    user: &SessionUser,
    current: &str,
    new: &str,
    client: &str,
) -> Result<(), AppError> {
    if new.chars().count() < 8 {
        return Err(AppError::BadRequest("password must be at least 8 characters".into()));
    }
    let permit = state.hasher.reserve()?;
    if !store::claim_sign_in_attempt(&state.db, &user.username, client, &attempt_limits(state)).await? {
        return Err(AppError::TooManyRequests(SIGN_IN_WINDOW_SECS as u64));
    }
    let row = store::user_by_id(&state.db, user.user_id).await?.ok_or(AppError::Unauthorized)?;
    if !permit.verify(Some(row.password_hash), Zeroizing::new(current.to_string())).await? {
        store::audit_sign_in_failure(&state.db, &user.username, client, "current-password check").await?;
        return Err(AppError::BadRequest("the current password is not correct".into()));
    }
    let hash = state.hasher.reserve()?.hash(Zeroizing::new(new.to_string())).await?;
    store::change_password(&state.db, user.user_id, &user.username, &hash, user.session_id).await
}

/// Resolves a session cookie value to its user; 401 when unknown, wrong or expired.
pub async fn session_user(db: &Db, cookie_value: &str) -> Result<SessionUser, AppError> {
    let (id, secret) = cookie_value.split_once('.').ok_or(AppError::Unauthorized)?;
    let session_id = Uuid::try_parse(id).map_err(|_| AppError::Unauthorized)?;
    let row = store::session_by_id(db, session_id).await?.ok_or(AppError::Unauthorized)?;
    if !constant_time_eq(&sha256(secret), &row.secret_hash) || row.expires_at <= Utc::now() {
        return Err(AppError::Unauthorized);
    }
    Ok(SessionUser { session_id, user_id: row.user_id, username: row.username, is_admin: row.is_admin })
}

/// Whether a session still stands (not signed out, not expired): for open streams re-checking
/// the credential they started with.
pub async fn session_alive(db: &Db, session_id: Uuid) -> Result<bool, AppError> {
    Ok(store::session_by_id(db, session_id).await?.is_some_and(|row| row.expires_at > Utc::now()))
}

/// Ends a session.
pub async fn sign_out(db: &Db, session_id: Uuid) -> Result<(), AppError> {
    store::delete_session(db, session_id).await
}

/// The user's open sessions, newest first, marking the one of this request.
pub async fn list(db: &Db, user: &SessionUser) -> Result<Vec<SessionInfo>, AppError> {
    Ok(store::sessions_of_user(db, user.user_id)
        .await?
        .into_iter()
        .map(|row| SessionInfo {
            id: row.id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            client: row.client,
            user_agent: row.user_agent,
            current: row.id == user.session_id,
        })
        .collect())
}

/// Ends one of the user's own sessions; 404 for any other id.
pub async fn revoke(db: &Db, user: &SessionUser, session_id: Uuid) -> Result<(), AppError> {
    match store::end_sessions(db, user.user_id, &user.username, Some(session_id), None).await? {
        0 => Err(AppError::NotFound),
        _ => Ok(()),
    }
}

/// Ends every session of the user, this one included ("Sign out everywhere").
pub async fn end_all(db: &Db, user: &SessionUser) -> Result<u64, AppError> {
    store::end_sessions(db, user.user_id, &user.username, None, None).await
}

// ---- cookies -----------------------------------------------------------------------------

/// The `Set-Cookie` value that stores a session: HttpOnly, SameSite=Strict, and `Secure` with
/// a `__Host-` name behind TLS.
pub fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    let name = if secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE };
    build_cookie(name, value, max_age_secs, secure, true)
}

/// The `Set-Cookie` value carrying the CSRF token (not HttpOnly: the page reads it).
pub fn csrf_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    let name = if secure { SECURE_CSRF_COOKIE } else { CSRF_COOKIE };
    build_cookie(name, token, max_age_secs, secure, false)
}

fn build_cookie(name: &'static str, value: &str, max_age_secs: i64, secure: bool, http_only: bool) -> String {
    cookie::Cookie::build((name, value.to_string()))
        .http_only(http_only)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// Reads the session cookie of a request: the `__Host-` one when the request came over TLS,
/// the plain one otherwise (never a plain cookie on a secure request, which a sibling host
/// could have set).
pub fn session_cookie_value(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = if secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Whether the request came over TLS (directly configured or through a proxy that says so).
pub fn is_secure(headers: &HeaderMap, configured: bool) -> bool {
    configured || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

/// The client's address: the TCP peer, or, behind `trusted_proxies` reverse proxies that each
/// append to `X-Forwarded-For`, the entry that many hops from the right (entries further left
/// are whatever the client chose to send). Without trusted proxies the header is ignored.
pub fn client_address(headers: &HeaderMap, extensions: &Extensions, trusted_proxies: usize) -> String {
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    if trusted_proxies > 0 {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let forwarded = hops.len().checked_sub(trusted_proxies).and_then(|i| hops.get(i)).or(hops.first());
        if let Some(ip) = forwarded.and_then(|hop| hop.parse::<std::net::IpAddr>().ok()) {
            return ip.to_string();
        }
    }
    peer.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_peer(ip: &str) -> Extensions {
        let mut ext = Extensions::new();
        ext.insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip.parse().unwrap(), 4000)));
        ext
    }

    #[test]
    fn forwarded_for_is_ignored_unless_proxies_are_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 0), "10.0.0.1");
    }

    #[test]
    fn behind_one_trusted_proxy_the_last_hop_is_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 1), "203.0.113.7");
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 2), "6.6.6.6");
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 1), "10.0.0.1");
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict_and_host_bound_when_secure() {
        let cookie = session_cookie("abc", 60, true);
        assert!(cookie.starts_with("__Host-lss_session=abc"), "{cookie}");
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Secure")
                && cookie.contains("Path=/")
        );
        assert!(!cookie.contains("Domain"));
        let plain = session_cookie("abc", 60, false);
        assert!(plain.starts_with("lss_session=abc") && !plain.contains("Secure"));
        assert!(csrf_cookie("t", 60, true).starts_with("__Host-lss_csrf=t"));
    }

    #[test]
    fn a_secure_request_reads_only_the_host_bound_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "lss_session=planted; __Host-lss_session=real".parse().unwrap());
        assert_eq!(session_cookie_value(&headers, true).as_deref(), Some("real"));
        assert_eq!(session_cookie_value(&headers, false).as_deref(), Some("planted"));
        headers.insert(header::COOKIE, "lss_session=planted".parse().unwrap());
        assert_eq!(session_cookie_value(&headers, true), None);
    }
}
