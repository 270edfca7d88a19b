//! Studio sessions: signing in (limited per username and per client address, the password
//! checked on the hashing threads), a user's list of sessions and the ways to end them, and
//! the password change that ends every other session. Sessions live in the database, so every
//! instance sees the same ones.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::{SessionInfo, WorkspaceItem};
use crate::server::domain::{Actor, AuditAction, NewPassword, Username};
use crate::server::error::AppError;
use crate::server::keys::passwords::{constant_time_eq, random_secret, sha256, Hasher};
use crate::server::store::{self, AttemptLimits, Db, SessionOrigin};

/// The window of the sign-in limits.
pub const SIGN_IN_WINDOW_SECS: i64 = 15 * 60;

/// A signed-in Studio user.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub is_admin: bool,
}

impl SessionUser {
    /// The workspace as this user sees it, or 404.
    pub async fn workspace(&self, db: &Db, workspace_id: Uuid) -> Result<WorkspaceItem, AppError> {
        crate::server::service::access::workspace_of_user(db, self.user_id, workspace_id).await
    }
}

/// Where a sign-in comes from.
pub struct Client<'a> {
    /// The client's address (the web layer decides which: `web::cookies::client_address`).
    pub address: &'a str,
    pub user_agent: Option<&'a str>,
}

/// A new session: the cookie value to set (shown to the browser only) and its expiry.
pub struct NewSession {
    pub cookie_value: String,
    pub expires_at: DateTime<Utc>,
}

/// Signs users in and keeps their sessions.
#[derive(Clone)]
pub struct SessionService {
    db: Db,
    hasher: Hasher,
    limits: AttemptLimits,
    session_hours: i64,
}

impl SessionService {
    /// A service over `db`, hashing with `hasher`, allowing `limits` of password checks, opening
    /// sessions of `session_hours`.
    pub fn new(db: Db, hasher: Hasher, limits: AttemptLimits, session_hours: i64) -> SessionService {
        SessionService { db, hasher, limits, session_hours }
    }

    /// How long a new session lasts, in hours.
    pub fn session_hours(&self) -> i64 {
        self.session_hours
    }

    /// Checks credentials and opens a fresh session, ending the one this browser held before
    /// (`previous_cookie`). Silent about which part was wrong. Every attempt takes a hashing permit
    /// first (429 at once when none is free) and is counted per username and per client address
    /// before the password is checked (429 past either limit).
    #[tracing::instrument(skip(self, password, client, previous_cookie), err)]
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client: &Client<'_>,
        previous_cookie: Option<&str>,
    ) -> Result<NewSession, AppError> {
        let permit = self.hasher.reserve()?;
        let parsed = Username::parse(username).ok();
        // An invalid name cannot be a user's, but its attempts still count against the client.
        let name = parsed
            .as_ref()
            .map(|u| u.as_str().to_string())
            .unwrap_or_else(|| username.trim().chars().take(64).collect());
        if !store::claim_sign_in_attempt(&self.db, &name, client.address, &self.limits).await? {
            return Err(AppError::TooManyRequests(SIGN_IN_WINDOW_SECS as u64));
        }
        let user = match &parsed {
            Some(username) => store::user_by_username(&self.db, username.as_str()).await?,
            None => None,
        };
        let verified =
            permit.verify(user.as_ref().map(|u| u.password_hash.clone()), Zeroizing::new(password.to_string())).await?;
        let Some(user) = user.filter(|_| verified) else {
            store::audit_sign_in_failure(&self.db, &name, client.address, "sign-in").await?;
            return Err(AppError::InvalidCredentials);
        };

        let replaces = match previous_cookie {
            Some(cookie) => self.session_user(cookie).await.ok().map(|old| old.session_id),
            None => None,
        };
        let id = Uuid::new_v4();
        let secret = random_secret();
        let expires_at = Utc::now() + Duration::hours(self.session_hours);
        let origin = SessionOrigin { client: client.address, user_agent: client.user_agent };
        // One transaction: the attempts forgotten, the browser's old session ended, the new
        // one stored, the sign-in audited.
        let mut tx = self.db.begin().await?;
        store::forget_sign_in_attempts_in(&mut tx, &user.username).await?;
        if let Some(old) = replaces {
            store::delete_session(&mut tx, old).await?;
        }
        store::insert_session_in(&mut tx, id, &sha256(&secret), user.id, expires_at, &origin).await?;
        let detail = format!("from {}", client.address);
        let actor = Actor::user(&user.username);
        store::audit(&mut tx, &store::Audit::of_user(&actor, AuditAction::UserSignedIn, Some(&detail))).await?;
        tx.commit().await?;
        Ok(NewSession { cookie_value: format!("{}.{}", id.simple(), secret), expires_at })
    }

    /// Changes a signed-in user's password. The current password is checked like a sign-in (a
    /// hashing permit, and the attempt counted per username and client); every other session of
    /// the user ends with the change.
    pub async fn change_password(
        &self,
        user: &SessionUser,
        current: &str,
        new: &str,
        client: &str,
    ) -> Result<(), AppError> {
        let new = NewPassword::parse(new)?;
        let permit = self.hasher.reserve()?;
        if !store::claim_sign_in_attempt(&self.db, &user.username, client, &self.limits).await? {
            return Err(AppError::TooManyRequests(SIGN_IN_WINDOW_SECS as u64));
        }
        let row = store::user_by_id(&self.db, user.user_id).await?.ok_or(AppError::Unauthorized)?;
        if !permit.verify(Some(row.password_hash), Zeroizing::new(current.to_string())).await? {
            store::audit_sign_in_failure(&self.db, &user.username, client, "current-password check").await?;
            return Err(AppError::BadRequest("the current password is not correct".into()));
        }
        let hash = self.hasher.reserve()?.hash(new.into_inner()).await?;
        let mut tx = self.db.begin().await?;
        store::set_password_hash_in(&mut tx, user.user_id, &hash).await?;
        store::forget_sign_in_attempts_in(&mut tx, &user.username).await?;
        let ended = store::delete_sessions_in(&mut tx, user.user_id, None, Some(user.session_id)).await?;
        let detail = format!("ended {ended} other session(s)");
        let actor = Actor::user(&user.username);
        store::audit(&mut tx, &store::Audit::of_user(&actor, AuditAction::UserPasswordChanged, Some(&detail))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resolves a session cookie value to its user; 401 when unknown, wrong or expired.
    pub async fn session_user(&self, cookie_value: &str) -> Result<SessionUser, AppError> {
        let (id, secret) = cookie_value.split_once('.').ok_or(AppError::Unauthorized)?;
        let session_id = Uuid::try_parse(id).map_err(|_| AppError::Unauthorized)?;
        let row = store::session_by_id(&self.db, session_id).await?.ok_or(AppError::Unauthorized)?;
        if !constant_time_eq(&sha256(secret), &row.secret_hash) || row.expires_at <= Utc::now() {
            return Err(AppError::Unauthorized);
        }
        Ok(SessionUser { session_id, user_id: row.user_id, username: row.username, is_admin: row.is_admin })
    }

    /// Whether a session still stands (not signed out, not expired): for open streams re-checking
    /// the credential they started with.
    pub async fn session_alive(&self, session_id: Uuid) -> Result<bool, AppError> {
        Ok(store::session_by_id(&self.db, session_id).await?.is_some_and(|row| row.expires_at > Utc::now()))
    }

    /// Ends a session.
    pub async fn sign_out(&self, session_id: Uuid) -> Result<(), AppError> {
        store::delete_session(&self.db, session_id).await
    }

    /// The user's open sessions, newest first, marking the one of this request.
    pub async fn list(&self, user: &SessionUser) -> Result<Vec<SessionInfo>, AppError> {
        Ok(store::sessions_of_user(&self.db, user.user_id)
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
    pub async fn revoke(&self, user: &SessionUser, session_id: Uuid) -> Result<(), AppError> {
        match self.end_sessions(user, Some(session_id)).await? {
            0 => Err(AppError::NotFound),
            _ => Ok(()),
        }
    }

    /// Ends every session of the user, this one included ("Sign out everywhere").
    pub async fn end_all(&self, user: &SessionUser) -> Result<u64, AppError> {
        self.end_sessions(user, None).await
    }

    /// Ends one of the user's sessions (`only`) or all of them, audited in the same
    /// transaction when any ended; how many.
    async fn end_sessions(&self, user: &SessionUser, only: Option<Uuid>) -> Result<u64, AppError> {
        let mut tx = self.db.begin().await?;
        let ended = store::delete_sessions_in(&mut tx, user.user_id, only, None).await?;
        if ended > 0 {
            let detail = format!("{ended} session(s)");
            let actor = Actor::user(&user.username);
            store::audit(&mut tx, &store::Audit::of_user(&actor, AuditAction::UserSessionsEnded, Some(&detail)))
                .await?;
        }
        tx.commit().await?;
        Ok(ended)
    }
}
