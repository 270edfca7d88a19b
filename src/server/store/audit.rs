//! The audit log: who did what, when, to which key; never a value. Entries form one hash chain
//! per workspace (and one for the accounts): a transaction records its entries and
//! [`Tx::commit`] appends them at the end of their chains, last, under the chain head's row lock.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::AuditEvent;
use crate::server::domain::audit::{chain_of, entry_time, Link, GENESIS};
use crate::server::domain::{Actor, AuditAction};
use crate::server::error::AppError;
use crate::server::store::{escape_like, on_pool, on_tx, Conn, Db, Tx};

/// An audit entry to write; never holds a value.
pub struct Audit<'a> {
    pub workspace_id: Option<Uuid>,
    pub actor: &'a str,
    pub action: AuditAction,
    pub key: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// The request (workflow run) the entry is about.
    pub run_id: Option<Uuid>,
}

impl<'a> Audit<'a> {
    /// An entry about `workspace_id` by `actor`.
    pub fn of(
        workspace_id: Uuid,
        actor: &'a Actor,
        action: AuditAction,
        key: Option<&'a str>,
        detail: Option<&'a str>,
    ) -> Audit<'a> {
        Audit { workspace_id: Some(workspace_id), actor: actor.as_str(), action, key, detail, run_id: None }
    }

    /// An entry about a user's own account (no workspace): sign-ins, sessions, passwords.
    pub fn of_user(actor: &'a Actor, action: AuditAction, detail: Option<&'a str>) -> Audit<'a> {
        Audit { workspace_id: None, actor: actor.as_str(), action, key: None, detail, run_id: None }
    }
}

/// An entry recorded in a transaction, written when it commits.
pub(super) struct Pending {
    id: Uuid,
    at: DateTime<Utc>,
    workspace_id: Option<Uuid>,
    actor: String,
    action: &'static str,
    key: Option<String>,
    detail: Option<String>,
    run_id: Option<Uuid>,
}

/// Records an audit entry: inside the transaction of the change it describes (written when it
/// commits), or on the pool, in a transaction of its own, for something that changes no other
/// row (a read, a sign-in failure).
pub async fn audit(conn: impl Into<Conn<'_>>, entry: &Audit<'_>) -> Result<(), AppError> {
    let pending = Pending {
        id: Uuid::new_v4(),
        at: entry_time(Utc::now()),
        workspace_id: entry.workspace_id,
        actor: entry.actor.to_owned(),
        action: entry.action.as_str(),
        key: entry.key.map(str::to_owned),
        detail: entry.detail.map(str::to_owned),
        run_id: entry.run_id,
    };
    match conn.into() {
        Conn::Tx(tx) => tx.audits.push(pending),
        Conn::Pool(db) => {
            let mut tx = db.begin().await?;
            tx.audits.push(pending);
            tx.commit().await?;
        }
    }
    Ok(())
}

const AUDIT_INSERT: &str =
    "INSERT INTO audit_events (id, workspace_id, actor, action, key, detail, at, run_id, seq, prev_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Appends `pending` to their chains, chain by chain in a fixed order: the head's row is
/// advanced by the number of entries (which locks it on PostgreSQL until the commit), the
/// entries are written with their places and hashes, and the head takes the last hash.
pub(super) async fn append(tx: &mut Tx, mut pending: Vec<Pending>) -> Result<(), sqlx::Error> {
    if pending.is_empty() {
        return Ok(());
    }
    pending.sort_by_key(|p| chain_of(p.workspace_id));
    for group in pending.chunk_by(|a, b| a.workspace_id == b.workspace_id) {
        let chain = chain_of(group[0].workspace_id);
        let count = group.len() as i64;
        let (last, mut prev): (i64, Vec<u8>) = on_tx!(tx, c => sqlx::query_as(
            "INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, $2, $3)
             ON CONFLICT (chain) DO UPDATE SET seq = audit_heads.seq + $2 RETURNING seq, hash")
            .bind(chain).bind(count).bind(&GENESIS[..]).fetch_one(&mut *c).await?);
        for (i, p) in group.iter().enumerate() {
            let seq = last - count + 1 + i as i64;
            let link = Link {
                workspace_id: p.workspace_id,
                seq,
                id: p.id,
                at: p.at,
                actor: &p.actor,
                action: p.action,
                key: p.key.as_deref(),
                detail: p.detail.as_deref(),
                run_id: p.run_id,
            };
            let hash = link.hash(&prev);
            on_tx!(tx, c => sqlx::query(AUDIT_INSERT)
                .bind(p.id).bind(p.workspace_id).bind(&p.actor).bind(p.action).bind(&p.key).bind(&p.detail).bind(p.at)
                .bind(p.run_id).bind(seq).bind(&prev[..]).bind(&hash[..]).execute(&mut *c).await?.rows_affected());
            prev = hash.to_vec();
        }
        on_tx!(tx, c => sqlx::query("UPDATE audit_heads SET hash = $2 WHERE chain = $1")
            .bind(chain).bind(&prev[..]).execute(&mut *c).await?.rows_affected());
    }
    Ok(())
}

/// An entry as its chain holds it.
#[derive(Debug, sqlx::FromRow)]
pub struct ChainRow {
    pub id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub seq: Option<i64>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub key: Option<String>,
    pub detail: Option<String>,
    pub run_id: Option<Uuid>,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
}

impl ChainRow {
    /// What the entry's hash covers (an unchained entry has place 0).
    pub fn link(&self) -> Link<'_> {
        Link {
            workspace_id: self.workspace_id,
            seq: self.seq.unwrap_or(0),
            id: self.id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            key: self.key.as_deref(),
            detail: self.detail.as_deref(),
            run_id: self.run_id,
        }
    }
}

const CHAIN_COLUMNS: &str = "id, workspace_id, seq, at, actor, action, key, detail, run_id, prev_hash, hash";

/// The condition selecting a chain's entries (`$1` is the workspace when there is one; bind it
/// with [`bind_chain`]).
fn chain_filter(workspace_id: Option<Uuid>) -> &'static str {
    if workspace_id.is_some() {
        "workspace_id = $1"
    } else {
        "workspace_id IS NULL"
    }
}

/// Binds the workspace of [`chain_filter`], when there is one.
macro_rules! bind_chain {
    ($query:expr, $workspace_id:expr) => {
        match $workspace_id {
            Some(id) => $query.bind(id),
            None => $query,
        }
    };
}

/// Calls `visit` with each entry of a chain in its order (entries outside the chain last),
/// until it answers false.
pub async fn walk_chain(
    db: &Db,
    workspace_id: Option<Uuid>,
    mut visit: impl FnMut(ChainRow) -> bool,
) -> Result<(), AppError> {
    use futures::TryStreamExt;
    let sql = format!(
        "SELECT {CHAIN_COLUMNS} FROM audit_events WHERE {} ORDER BY CASE WHEN seq IS NULL THEN 1 ELSE 0 END, seq, id",
        chain_filter(workspace_id)
    );
    on_pool!(db, pool => {
        let mut rows = bind_chain!(sqlx::query_as::<_, ChainRow>(sqlx::AssertSqlSafe(sql.as_str())), workspace_id).fetch(pool);
        while let Some(row) = rows.try_next().await? {
            if !visit(row) {
                break;
            }
        }
    });
    Ok(())
}

/// A chain's head: the place and hash of the last entry appended, if any was.
pub async fn chain_head(db: &Db, workspace_id: Option<Uuid>) -> Result<Option<(i64, Vec<u8>)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE chain = $1")
        .bind(chain_of(workspace_id)).fetch_optional(pool).await?))
}

/// Chains the entries written before the log was a chain, oldest first, in every chain that has
/// no head yet (one transaction; instances starting together take turns). Entries without a
/// place in a chain that has a head were written around the chain, and `audit verify` names them.
pub async fn chain_unchained(db: &Db) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    tx.lock_name("audit chain legacy").await?;
    let chains: Vec<Option<Uuid>> = on_tx!(&mut tx, c => sqlx::query_scalar(
        "SELECT DISTINCT workspace_id FROM audit_events WHERE seq IS NULL").fetch_all(&mut *c).await?);
    for workspace_id in chains {
        let chain = chain_of(workspace_id);
        let has_head: bool = on_tx!(&mut tx, c => sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM audit_heads WHERE chain = $1").bind(chain).fetch_one(&mut *c).await?);
        if has_head {
            continue;
        }
        let sql = format!(
            "SELECT {CHAIN_COLUMNS} FROM audit_events WHERE {} AND seq IS NULL ORDER BY at, id",
            chain_filter(workspace_id)
        );
        let rows: Vec<ChainRow> = on_tx!(&mut tx, c => bind_chain!(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())), workspace_id).fetch_all(&mut *c).await?);
        let mut prev = GENESIS.to_vec();
        for (i, row) in rows.iter().enumerate() {
            let seq = i as i64 + 1;
            let hash = Link { seq, ..row.link() }.hash(&prev);
            on_tx!(&mut tx, c => sqlx::query("UPDATE audit_events SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1")
                .bind(row.id).bind(seq).bind(&prev[..]).bind(&hash[..]).execute(&mut *c).await?.rows_affected());
            prev = hash.to_vec();
        }
        on_tx!(&mut tx, c => sqlx::query("INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, $2, $3)")
            .bind(chain).bind(rows.len() as i64).bind(&prev[..]).execute(&mut *c).await?.rows_affected());
    }
    tx.commit().await?;
    Ok(())
}

/// A user's own sign-in events (successes and failures), newest first.
pub async fn sign_in_events(db: &Db, username: &str, limit: i64) -> Result<Vec<AuditEvent>, AppError> {
    let actor = Actor::user(username).0;
    let rows: Vec<AuditEvent> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, at, actor, action, key, detail FROM audit_events WHERE workspace_id IS NULL AND actor = $1 ORDER BY at DESC, id LIMIT $2")
        .bind(actor).bind(limit).fetch_all(pool).await?);
    Ok(rows)
}

/// How many entries of `action` by `actor` a workspace recorded after `since` (a rate counted
/// in the database, so instances share it).
pub async fn count_actions_since(
    db: &Db,
    workspace_id: Uuid,
    actor: &str,
    action: AuditAction,
    since: chrono::DateTime<Utc>,
) -> Result<i64, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE workspace_id = $1 AND actor = $2 AND action = $3 AND at > $4")
        .bind(workspace_id).bind(actor).bind(action.as_str()).bind(since).fetch_one(pool).await?))
}

/// A workspace's audit log, newest first; `search` matches action, actor or key.
pub async fn audit_events(
    db: &Db,
    workspace_id: Uuid,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, AppError> {
    let pattern = search.filter(|s| !s.is_empty()).map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    let rows: Vec<AuditEvent> = on_pool!(db, pool => sqlx::query_as(
        "SELECT e.id, e.at, e.actor, e.action, e.key, e.detail, e.run_id, s.id AS secret_id
         FROM audit_events e LEFT JOIN secrets s ON s.workspace_id = e.workspace_id AND s.key = e.key
         WHERE e.workspace_id = $1
         AND ($2 IS NULL OR LOWER(e.action) LIKE $2 ESCAPE '\\' OR LOWER(e.actor) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(e.key, '')) LIKE $2 ESCAPE '\\')
         ORDER BY e.seq DESC, e.at DESC LIMIT $3")
        .bind(workspace_id).bind(pattern).bind(limit).fetch_all(pool).await?);
    Ok(rows)
}
