//! Studio sessions and the record of sign-in attempts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::server::domain::Actor;
use crate::server::domain::AuditAction;
use crate::server::error::AppError;
use crate::server::store::{audit, on_conn, on_pool, on_tx, Audit, Conn, Db, Tx};

/// A session row joined with its user.
#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub secret_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
    pub username: String,
    pub is_admin: bool,
}

/// Where a session was opened: the client's address and its user agent.
pub struct SessionOrigin<'a> {
    pub client: &'a str,
    pub user_agent: Option<&'a str>,
}

/// Stores a new session inside `tx`.
pub async fn insert_session_in(
    tx: &mut Tx,
    id: Uuid,
    secret_hash: &[u8],
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    origin: &SessionOrigin<'_>,
) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("INSERT INTO sessions (id, secret_hash, user_id, created_at, expires_at, client, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id).bind(secret_hash).bind(user_id).bind(Utc::now()).bind(expires_at).bind(origin.client).bind(origin.user_agent)
        .execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// Forgets the recorded sign-in attempts of `username` inside `tx` (after a success).
pub async fn forget_sign_in_attempts_in(tx: &mut Tx, username: &str) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM sign_in_failures WHERE username = $1").bind(username).execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// A session with its user.
pub async fn session_by_id(db: &Db, id: Uuid) -> Result<Option<SessionRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT s.secret_hash, s.expires_at, u.id AS user_id, u.username, u.is_admin
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1")
        .bind(id).fetch_optional(pool).await?))
}

/// A user's sessions that have not expired, newest first.
pub async fn sessions_of_user(db: &Db, user_id: Uuid) -> Result<Vec<SessionListRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, created_at, expires_at, client, user_agent FROM sessions
         WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id")
        .bind(user_id).bind(Utc::now()).fetch_all(pool).await?))
}

/// A session as the account page lists it.
#[derive(sqlx::FromRow)]
pub struct SessionListRow {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

/// Ends a session, whoever's it is (inside `tx`: the one a browser held before signing in).
pub async fn delete_session(conn: impl Into<Conn<'_>>, id: Uuid) -> Result<(), AppError> {
    on_conn!(conn.into(), exec => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(exec).await?.rows_affected());
    Ok(())
}

/// Deletes sessions of `user_id` inside `tx`: one (`only`), or all but `keep`, or all; how many.
pub async fn delete_sessions_in(
    tx: &mut Tx,
    user_id: Uuid,
    only: Option<Uuid>,
    keep: Option<Uuid>,
) -> Result<u64, AppError> {
    Ok(on_tx!(tx, conn => sqlx::query(
        "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR id <> $3)")
        .bind(user_id).bind(only).bind(keep).execute(&mut *conn).await?.rows_affected()))
}

/// Sign-in attempts allowed within a window, per username and per client address.
#[derive(Clone, Copy, Debug)]
pub struct AttemptLimits {
    pub window_secs: i64,
    pub per_user: i64,
    pub per_client: i64,
}

/// Records a password check about to happen for `username` from `client`, if both are still
/// under their limits, and purges attempts older than the window; whether it may go ahead.
///
/// The attempt is recorded before the password is checked (a success deletes it again with
/// the others of the user), and counting and recording are one transaction serialized per
/// username and per client (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: transaction-scoped
/// advisory locks, always taken username first), so parallel guesses cannot slip past the
/// limit between the count and the record.
pub async fn claim_sign_in_attempt(
    db: &Db,
    username: &str,
    client: &str,
    limits: &AttemptLimits,
) -> Result<bool, AppError> {
    let now = Utc::now();
    let since = now - chrono::Duration::seconds(limits.window_secs);
    let mut tx = db.begin().await?;
    tx.lock_name(&format!("sign-in user {username}")).await?;
    tx.lock_name(&format!("sign-in client {client}")).await?;
    let allowed = on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM sign_in_failures WHERE at <= $1").bind(since).execute(&mut *conn).await?;
        let (by_user, by_client): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM sign_in_failures WHERE username = $1 AND at > $3),
                    (SELECT COUNT(*) FROM sign_in_failures WHERE client = $2 AND at > $3)")
            .bind(username).bind(client).bind(since).fetch_one(&mut *conn).await?;
        let allowed = by_user < limits.per_user && by_client < limits.per_client;
        if allowed {
            sqlx::query("INSERT INTO sign_in_failures (username, client, at) VALUES ($1, $2, $3)")
                .bind(username).bind(client).bind(now).execute(&mut *conn).await?;
        }
        allowed
    });
    tx.commit().await?;
    Ok(allowed)
}

/// Audits a failed password check (`what`: a sign-in or the current-password check).
pub async fn audit_sign_in_failure(db: &Db, username: &str, client: &str, what: &str) -> Result<(), AppError> {
    let actor = Actor::user(username).0;
    let detail = format!("{what} from {client}");
    audit(
        db,
        &Audit {
            workspace_id: None,
            actor: &actor,
            action: AuditAction::UserSignInFailed,
            key: None,
            detail: Some(&detail),
            run_id: None,
        },
    )
    .await
}
