//! SQL of the workflow runtime: runs, their documents and their transition history.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{DocumentKind, RunDocument, RunStatus};
use crate::server::error::AppError;
use crate::server::store::{on_conn, on_pool, on_tx, Conn, Db, Tx, WorkspaceLock};

/// A run row. Its JSON columns are stored as text and parsed once, as the row is read; none of
/// them ever holds a secret value.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow: String,
    pub place: String,
    pub status: RunStatus,
    pub args: Value,
    pub state: Value,
    pub result: Option<Value>,
    pub parent_id: Option<Uuid>,
    pub callback: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A run row as stored.
#[derive(sqlx::FromRow)]
struct StoredRun {
    id: Uuid,
    workspace_id: Uuid,
    workflow: String,
    place: String,
    status: RunStatus,
    args: String,
    state: String,
    result: Option<String>,
    parent_id: Option<Uuid>,
    callback: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    version: i64,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<StoredRun> for RunRow {
    type Error = AppError;

    fn try_from(row: StoredRun) -> Result<RunRow, AppError> {
        let json = |text: &str| {
            serde_json::from_str(text)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("run {} holds invalid JSON: {e}", row.id)))
        };
        Ok(RunRow {
            args: json(&row.args)?,
            state: json(&row.state)?,
            result: row.result.as_deref().map(json).transpose()?,
            id: row.id,
            workspace_id: row.workspace_id,
            workflow: row.workflow,
            place: row.place,
            status: row.status,
            parent_id: row.parent_id,
            callback: row.callback,
            expires_at: row.expires_at,
            version: row.version,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A run's status is stored as its name (TEXT, on both engines) and read straight into
/// [`RunStatus`], once, as the row is decoded.
impl<DB: sqlx::Database> sqlx::Type<DB> for RunStatus
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for RunStatus
where
    &'r str: sqlx::Decode<'r, DB>,
{
    fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let name = <&str as sqlx::Decode<DB>>::decode(value)?;
        RunStatus::parse(name).ok_or_else(|| format!("unknown run status {name:?}").into())
    }
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Uuid,
    kind: String,
    content: String,
    created_at: DateTime<Utc>,
}

impl DocumentRow {
    fn into_document(self) -> Result<RunDocument, AppError> {
        let content = serde_json::from_str(&self.content)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored document is not JSON: {e}")))?;
        let kind = DocumentKind::parse(&self.kind)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored document has unknown kind {:?}", self.kind)))?;
        Ok(RunDocument { id: self.id, kind, content, created_at: self.created_at })
    }
}

macro_rules! run_columns {
    () => {
        "id, workspace_id, workflow, place, status, args, state, result, parent_id, callback, expires_at, version, created_by, created_at, updated_at"
    };
}

/// Inserts a new run.
pub async fn insert_run(tx: &mut Tx, run: &RunRow) -> Result<(), AppError> {
    let sql = concat!(
        "INSERT INTO workflow_runs (",
        run_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    on_tx!(tx, conn => sqlx::query(sql)
        .bind(run.id).bind(run.workspace_id).bind(&run.workflow).bind(&run.place).bind(run.status.as_str())
        .bind(run.args.to_string()).bind(run.state.to_string()).bind(run.result.as_ref().map(Value::to_string)).bind(run.parent_id).bind(&run.callback)
        .bind(run.expires_at).bind(run.version).bind(&run.created_by).bind(run.created_at).bind(run.updated_at)
        .execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// How many runs a workspace started after `since`, and when the oldest of them started.
/// Concurrent callers count one after another: SQLite's write transactions are serial, and on
/// PostgreSQL the workspace row is locked (`NO KEY UPDATE`, which secret writes, taking only a
/// key-share lock for their foreign key, do not wait for).
pub async fn runs_started_since(
    tx: &mut Tx,
    workspace_id: Uuid,
    since: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>), AppError> {
    tx.lock_workspace(workspace_id, WorkspaceLock::NoKeyUpdate).await?;
    let sql = "SELECT COUNT(*), MIN(created_at) FROM workflow_runs WHERE workspace_id = $1 AND created_at > $2";
    Ok(on_tx!(tx, conn => sqlx::query_as(sql).bind(workspace_id).bind(since).fetch_one(&mut *conn).await?))
}

/// A run of a workspace.
pub async fn run(conn: impl Into<Conn<'_>>, workspace_id: Uuid, id: Uuid) -> Result<Option<RunRow>, AppError> {
    let sql = concat!("SELECT ", run_columns!(), " FROM workflow_runs WHERE workspace_id = $1 AND id = $2");
    let row: Option<StoredRun> =
        on_conn!(conn.into(), exec => sqlx::query_as(sql).bind(workspace_id).bind(id).fetch_optional(exec).await?);
    row.map(RunRow::try_from).transpose()
}

/// A run by id alone, for the engine moving a run it already holds (its workspace was checked
/// when the caller found it).
pub async fn run_by_id(conn: impl Into<Conn<'_>>, id: Uuid) -> Result<Option<RunRow>, AppError> {
    let sql = concat!("SELECT ", run_columns!(), " FROM workflow_runs WHERE id = $1");
    let row: Option<StoredRun> =
        on_conn!(conn.into(), exec => sqlx::query_as(sql).bind(id).fetch_optional(exec).await?);
    row.map(RunRow::try_from).transpose()
}

/// A workspace's runs, newest first, optionally with one status.
pub async fn runs(db: &Db, workspace_id: Uuid, status: Option<&str>, limit: i64) -> Result<Vec<RunRow>, AppError> {
    let sql = concat!(
        "SELECT ",
        run_columns!(),
        " FROM workflow_runs WHERE workspace_id = $1 AND ($2 IS NULL OR status = $2)
                       ORDER BY created_at DESC, id LIMIT $3"
    );
    let rows: Vec<StoredRun> =
        on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).bind(status).bind(limit).fetch_all(pool).await?);
    rows.into_iter().map(RunRow::try_from).collect()
}

/// Ids of runs that were moving when a process stopped (to resume at start).
pub async fn running_ids(db: &Db) -> Result<Vec<Uuid>, AppError> {
    Ok(
        on_pool!(db, pool => sqlx::query_scalar("SELECT id FROM workflow_runs WHERE status = 'running'").fetch_all(pool).await?),
    )
}

/// Waiting runs whose expiry has passed.
pub async fn expired_ids(db: &Db, now: DateTime<Utc>) -> Result<Vec<(Uuid, Uuid)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT workspace_id, id FROM workflow_runs WHERE status = 'waiting' AND expires_at IS NOT NULL AND expires_at <= $1")
        .bind(now).fetch_all(pool).await?))
}

/// Locks a run at `expected_version` for the rest of the transaction (PostgreSQL row lock;
/// SQLite write transactions are serial anyway); `false` when another change came first, so
/// racing submissions fail before they touch any secret.
pub async fn claim_run(tx: &mut Tx, id: Uuid, expected_version: i64) -> Result<bool, AppError> {
    let n = on_tx!(tx, conn => sqlx::query("UPDATE workflow_runs SET updated_at = $1 WHERE id = $2 AND version = $3")
        .bind(Utc::now()).bind(id).bind(expected_version).execute(&mut *conn).await?.rows_affected());
    Ok(n == 1)
}

/// Moves a run from `expected_version` on; `false` when another change came first.
#[allow(clippy::too_many_arguments)]
pub async fn update_run(
    tx: &mut Tx,
    id: Uuid,
    expected_version: i64,
    place: &str,
    status: RunStatus,
    state: &Value,
    result: Option<&Value>,
) -> Result<bool, AppError> {
    let n = on_tx!(tx, conn => sqlx::query(
        "UPDATE workflow_runs SET place = $1, status = $2, state = $3, result = $4, version = version + 1, updated_at = $5
         WHERE id = $6 AND version = $7")
        .bind(place).bind(status.as_str()).bind(state.to_string()).bind(result.map(Value::to_string)).bind(Utc::now()).bind(id).bind(expected_version)
        .execute(&mut *conn).await?.rows_affected());
    Ok(n == 1)
}

/// Appends a document to a run.
pub async fn insert_document(tx: &mut Tx, run_id: Uuid, kind: DocumentKind, content: &str) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO workflow_documents (id, run_id, seq, kind, content, created_at)
         VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM workflow_documents WHERE run_id = $2), $3, $4, $5)")
        .bind(Uuid::new_v4()).bind(run_id).bind(kind.as_str()).bind(content).bind(Utc::now())
        .execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// Records an applied transition (payload without values).
#[allow(clippy::too_many_arguments)]
pub async fn insert_transition(
    tx: &mut Tx,
    run_id: Uuid,
    version: i64,
    name: &str,
    from: &str,
    to: &str,
    payload: &str,
    actor: &str,
) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO workflow_transitions (run_id, version, name, from_place, to_place, payload, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(run_id).bind(version).bind(name).bind(from).bind(to).bind(payload).bind(actor).bind(Utc::now())
        .execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// A run's documents in order.
pub async fn documents(db: &Db, run_id: Uuid) -> Result<Vec<RunDocument>, AppError> {
    let rows: Vec<DocumentRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, content, created_at FROM workflow_documents WHERE run_id = $1 ORDER BY seq")
        .bind(run_id).fetch_all(pool).await?);
    rows.into_iter().map(DocumentRow::into_document).collect()
}

/// The documents of the runs [`runs`] lists for the same arguments, by run, each in order.
pub async fn documents_of_runs(
    db: &Db,
    workspace_id: Uuid,
    status: Option<&str>,
    limit: i64,
) -> Result<std::collections::HashMap<Uuid, Vec<RunDocument>>, AppError> {
    let rows: Vec<RunDocumentRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT d.run_id, d.id, d.kind, d.content, d.created_at FROM workflow_documents d
         WHERE d.run_id IN (SELECT id FROM workflow_runs WHERE workspace_id = $1 AND ($2 IS NULL OR status = $2)
                            ORDER BY created_at DESC, id LIMIT $3)
         ORDER BY d.run_id, d.seq")
        .bind(workspace_id).bind(status).bind(limit).fetch_all(pool).await?);
    let mut out: std::collections::HashMap<Uuid, Vec<RunDocument>> = std::collections::HashMap::new();
    for row in rows {
        let document = DocumentRow { id: row.id, kind: row.kind, content: row.content, created_at: row.created_at }
            .into_document()?;
        out.entry(row.run_id).or_default().push(document);
    }
    Ok(out)
}

/// A document with the run it belongs to.
#[derive(sqlx::FromRow)]
struct RunDocumentRow {
    run_id: Uuid,
    id: Uuid,
    kind: String,
    content: String,
    created_at: DateTime<Utc>,
}

/// The content of a run's latest document of `kind`, inside `tx`.
pub async fn latest_document_in(tx: &mut Tx, run_id: Uuid, kind: DocumentKind) -> Result<Option<String>, AppError> {
    Ok(on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT content FROM workflow_documents WHERE run_id = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1")
        .bind(run_id).bind(kind.as_str()).fetch_optional(&mut *conn).await?))
}
