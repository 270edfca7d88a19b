//! Every SQL statement of the application, written once for both engines. Functions here know
//! rows, not HTTP; each write that spans rows runs in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{Role, SecretItem, WorkspaceItem};
use crate::server::db::{on_pool, on_tx, Db, Tx};
use crate::server::error::{on_constraint, AppError};

/// A secret row with its ciphertext (never leaves the server).
#[derive(sqlx::FromRow)]
pub struct SecretRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub key: String,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_version: i32,
    /// The associated-data version of the ciphertext (see `crypto::DataKey::open_value`).
    pub aad_version: i32,
    /// The data key it is sealed under, wrapped; read in the same statement, so a rotation
    /// retiring that key cannot slip in between.
    pub wrapped_key: Vec<u8>,
}

/// The columns of [`SecretRow`], from `secrets s` joined with its data key `k`.
macro_rules! secret_row_from {
    () => {
        "SELECT s.id, s.workspace_id, s.key, s.ciphertext, s.nonce, s.key_version, s.aad_version, k.wrapped_key
         FROM secrets s JOIN workspace_keys k ON k.workspace_id = s.workspace_id AND k.version = s.key_version"
    };
}

/// The listing columns of a secret.
#[derive(sqlx::FromRow)]
struct SecretItemRow {
    id: Uuid,
    key: String,
    has_value: bool,
    updated_at: DateTime<Utc>,
}

impl From<SecretItemRow> for SecretItem {
    fn from(r: SecretItemRow) -> Self {
        SecretItem { id: r.id, key: r.key, has_value: r.has_value, updated_at: r.updated_at }
    }
}

/// A sealed value ready to store.
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub key_version: i32,
    pub aad_version: i32,
    pub has_value: bool,
}

/// A user row.
#[derive(sqlx::FromRow, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// An API token row (hash only).
#[derive(sqlx::FromRow, Clone)]
pub struct TokenRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A session row joined with its user.
#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub secret_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
    pub username: String,
    pub is_admin: bool,
}

#[derive(sqlx::FromRow)]
struct WorkspaceRoleRow {
    id: Uuid,
    name: String,
    role: String,
}

impl WorkspaceRoleRow {
    fn into_item(self) -> Result<WorkspaceItem, AppError> {
        let role =
            Role::parse(&self.role).ok_or_else(|| anyhow::anyhow!("unknown role {:?} in memberships", self.role))?;
        Ok(WorkspaceItem { id: self.id, name: self.name, role })
    }
}

/// The listing columns of `secrets`, spliced into statements with `concat!`.
macro_rules! item_columns {
    () => {
        "id, key, has_value, updated_at"
    };
}

// ---- master key check -------------------------------------------------------------------

/// The stored key-check blob, if the database has one.
pub async fn key_check(db: &Db) -> Result<Option<Vec<u8>>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_scalar("SELECT blob FROM key_check WHERE id = 1").fetch_optional(pool).await?))
}

/// Whether any encrypted data (a wrapped data key) exists.
pub async fn has_encrypted_data(db: &Db) -> Result<bool, AppError> {
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM workspace_keys").fetch_one(pool).await?);
    Ok(n > 0)
}

/// Stores the key-check blob once.
pub async fn insert_key_check(db: &Db, blob: &[u8]) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query("INSERT INTO key_check (id, blob, created_at) VALUES (1, $1, $2)")
        .bind(blob).bind(Utc::now()).execute(pool).await?.rows_affected());
    Ok(())
}

// ---- users, memberships, workspaces -----------------------------------------------------

/// Inserts a user; 409 when the username is taken.
pub async fn insert_user(
    db: &Db,
    id: Uuid,
    username: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query(
        "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id).bind(username).bind(password_hash).bind(is_admin).bind(Utc::now())
        .execute(pool).await
        .map_err(on_constraint("users_username_unique", "a user with this username exists"))?.rows_affected());
    Ok(())
}

/// Finds a user by (lowercased) username.
pub async fn user_by_username(db: &Db, username: &str) -> Result<Option<UserRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = $1")
        .bind(username).fetch_optional(pool).await?))
}

/// How many users exist.
pub async fn count_users(db: &Db) -> Result<i64, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?))
}

/// Creates a workspace with its first data key and, optionally, its owner: one transaction.
pub async fn insert_workspace(
    db: &Db,
    id: Uuid,
    name: &str,
    wrapped_key: &[u8],
    owner: Option<Uuid>,
) -> Result<(), AppError> {
    let now = Utc::now();
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id).bind(name).bind(now).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at) VALUES ($1, 1, $2, $3)")
            .bind(id).bind(wrapped_key).bind(now).execute(&mut *tx).await?;
        if let Some(user_id) = owner {
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                .bind(id).bind(user_id).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Adds a member with a role; 409 when already a member.
pub async fn insert_membership(db: &Db, workspace_id: Uuid, user_id: Uuid, role: &str) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id).bind(user_id).bind(role).bind(Utc::now()).execute(pool).await
        .map_err(on_constraint("memberships_pkey", "the user is already a member"))?.rows_affected());
    Ok(())
}

/// A workspace's members, by username.
pub async fn members(db: &Db, workspace_id: Uuid) -> Result<Vec<crate::model::Member>, AppError> {
    let rows: Vec<(Uuid, String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT u.id, u.username, m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 ORDER BY u.username")
        .bind(workspace_id).fetch_all(pool).await?);
    rows.into_iter()
        .map(|(user_id, username, role)| {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role:?} in memberships"))?;
            Ok(crate::model::Member { user_id, username, role })
        })
        .collect()
}

/// Changes a member's role (`Some`) or removes the member (`None`), refusing to leave the
/// workspace without an owner; audited in the same transaction. `false` when not a member.
pub async fn change_membership(
    db: &Db,
    workspace_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
    actor: &str,
) -> Result<bool, AppError> {
    let mut tx = db.begin().await?;
    let changed = on_tx!(&mut tx, conn => match role {
        Some(role) => sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
            .bind(role.as_str()).bind(workspace_id).bind(user_id).execute(&mut *conn).await?.rows_affected(),
        None => sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id).bind(user_id).execute(&mut *conn).await?.rows_affected(),
    });
    if changed == 0 {
        return Ok(false);
    }
    let owners: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'")
        .bind(workspace_id).fetch_one(&mut *conn).await?);
    if owners == 0 {
        return Err(AppError::Conflict("a workspace keeps at least one owner".into()));
    }
    let detail = format!("user {user_id}: {}", role.map(Role::as_str).unwrap_or("removed"));
    audit_in(
        &mut tx,
        &Audit { workspace_id: Some(workspace_id), actor, action: "member.changed", key: None, detail: Some(&detail) },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A user by id.
pub async fn user_by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT id, username, password_hash, is_admin FROM users WHERE id = $1")
        .bind(id).fetch_optional(pool).await?))
}

/// All workspaces, by name (for the CLI).
pub async fn all_workspaces(db: &Db) -> Result<Vec<(Uuid, String)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT id, name FROM workspaces ORDER BY name, id").fetch_all(pool).await?))
}

/// Whether a workspace exists.
pub async fn workspace_exists(db: &Db, id: Uuid) -> Result<bool, AppError> {
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE id = $1").bind(id).fetch_one(pool).await?);
    Ok(n > 0)
}

/// The workspaces a user belongs to, with the user's role, by name.
pub async fn workspaces_of_user(db: &Db, user_id: Uuid) -> Result<Vec<WorkspaceItem>, AppError> {
    let rows: Vec<WorkspaceRoleRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT w.id, w.name, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
         WHERE m.user_id = $1 ORDER BY w.name, w.id")
        .bind(user_id).fetch_all(pool).await?);
    rows.into_iter().map(WorkspaceRoleRow::into_item).collect()
}

/// One workspace as a member sees it, or `None` when the user is not a member.
pub async fn workspace_of_user(db: &Db, user_id: Uuid, workspace_id: Uuid) -> Result<Option<WorkspaceItem>, AppError> {
    let row: Option<WorkspaceRoleRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT w.id, w.name, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
         WHERE m.user_id = $1 AND w.id = $2")
        .bind(user_id).bind(workspace_id).fetch_optional(pool).await?);
    row.map(WorkspaceRoleRow::into_item).transpose()
}

// ---- data keys ---------------------------------------------------------------------------

/// The active (highest) data key version of a workspace and its wrapped bytes, read inside the
/// writer's transaction and held against rotation until it ends: on PostgreSQL with a share lock
/// on the workspace row, which a new key version waits for (see [`add_data_key`]); SQLite's
/// write transactions run one at a time anyway. So once a new version is committed, no value
/// can be written under an older one.
pub async fn active_data_key_in(tx: &mut Tx, workspace_id: Uuid) -> Result<Option<(i32, Vec<u8>)>, AppError> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR SHARE").bind(workspace_id).execute(&mut **t).await?;
    }
    Ok(on_tx!(tx, conn => sqlx::query_as(
        "SELECT version, wrapped_key FROM workspace_keys WHERE workspace_id = $1 ORDER BY version DESC LIMIT 1")
        .bind(workspace_id).fetch_optional(&mut *conn).await?))
}

/// Adds the next data key version of a workspace (wrapped by `wrap` for that version) and
/// returns it. On PostgreSQL it first takes the workspace row exclusively, waiting for writers
/// still sealing under the current version.
pub async fn add_data_key(tx: &mut Tx, workspace_id: Uuid, wrap: impl FnOnce(i32) -> Vec<u8>) -> Result<i32, AppError> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE").bind(workspace_id).execute(&mut **t).await?;
    }
    let current: Option<i32> = on_tx!(tx, conn => sqlx::query_scalar("SELECT MAX(version) FROM workspace_keys WHERE workspace_id = $1")
        .bind(workspace_id).fetch_one(&mut *conn).await?);
    let version = current.ok_or(AppError::NotFound)? + 1;
    let wrapped = wrap(version);
    on_tx!(tx, conn => sqlx::query("INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id).bind(version).bind(&wrapped).bind(Utc::now()).execute(&mut *conn).await?.rows_affected());
    Ok(version)
}

/// Up to `limit` secrets of a workspace still sealed under a version older than `version`.
pub async fn secrets_to_reseal(
    tx: &mut Tx,
    workspace_id: Uuid,
    version: i32,
    limit: i64,
) -> Result<Vec<SecretRow>, AppError> {
    let sql = concat!(secret_row_from!(), " WHERE s.workspace_id = $1 AND s.key_version < $2 ORDER BY s.id LIMIT $3");
    Ok(
        on_tx!(tx, conn => sqlx::query_as(sql).bind(workspace_id).bind(version).bind(limit).fetch_all(&mut *conn).await?),
    )
}

/// Replaces a secret's ciphertext with `sealed` if it is still under `old_version` (a writer
/// may have sealed it anew meanwhile); whether it did. `updated_at` is left alone: the value
/// did not change.
pub async fn reseal_secret(tx: &mut Tx, id: Uuid, old_version: i32, sealed: &Sealed) -> Result<bool, AppError> {
    let sql = "UPDATE secrets SET ciphertext = $1, nonce = $2, key_version = $3, aad_version = $4 WHERE id = $5 AND key_version = $6";
    let changed = on_tx!(tx, conn => sqlx::query(sql)
        .bind(&sealed.ciphertext).bind(&sealed.nonce).bind(sealed.key_version).bind(sealed.aad_version).bind(id).bind(old_version)
        .execute(&mut *conn).await?.rows_affected());
    Ok(changed == 1)
}

/// Deletes the data key versions below `version` that no secret uses any more; how many.
pub async fn retire_data_keys(tx: &mut Tx, workspace_id: Uuid, version: i32) -> Result<u64, AppError> {
    let sql = "DELETE FROM workspace_keys WHERE workspace_id = $1 AND version < $2
               AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.workspace_id = $1 AND s.key_version = workspace_keys.version)";
    Ok(on_tx!(tx, conn => sqlx::query(sql).bind(workspace_id).bind(version).execute(&mut *conn).await?.rows_affected()))
}

/// How many data key versions a workspace keeps, and how many of its secrets use each.
pub async fn data_key_usage(db: &Db, workspace_id: Uuid) -> Result<Vec<(i32, i64)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT k.version, COUNT(s.id) FROM workspace_keys k
         LEFT JOIN secrets s ON s.workspace_id = k.workspace_id AND s.key_version = k.version
         WHERE k.workspace_id = $1 GROUP BY k.version ORDER BY k.version")
        .bind(workspace_id).fetch_all(pool).await?))
}

// ---- secrets -----------------------------------------------------------------------------

/// A workspace's secrets, sorted by key; no ciphertext is read.
pub async fn list_secrets(db: &Db, workspace_id: Uuid) -> Result<Vec<SecretItem>, AppError> {
    let sql = concat!("SELECT ", item_columns!(), " FROM secrets WHERE workspace_id = $1 ORDER BY key");
    let rows: Vec<SecretItemRow> = on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).fetch_all(pool).await?);
    Ok(rows.into_iter().map(SecretItem::from).collect())
}

/// One page of a workspace's secrets whose key contains `needle` (any case), by key; with how
/// many match and how many the workspace holds. The Studio pages its table with this, so a
/// page costs the same with 10 secrets or 10,000.
pub async fn secrets_page(
    db: &Db,
    workspace_id: Uuid,
    needle: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SecretItem>, i64, i64), AppError> {
    let pattern = format!("%{}%", escape_like(&needle.to_lowercase()));
    let page = concat!(
        "SELECT ",
        item_columns!(),
        " FROM secrets WHERE workspace_id = $1 AND lower(key) LIKE $2 ESCAPE '\\'
                        ORDER BY key LIMIT $3 OFFSET $4"
    );
    let counts = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN lower(key) LIKE $2 ESCAPE '\\' THEN 1 ELSE 0 END), 0)
                  FROM secrets WHERE workspace_id = $1";
    let (rows, (total, matching)): (Vec<SecretItemRow>, (i64, i64)) = on_pool!(db, pool => (
        sqlx::query_as(page).bind(workspace_id).bind(&pattern).bind(limit).bind(offset).fetch_all(pool).await?,
        sqlx::query_as(counts).bind(workspace_id).bind(&pattern).fetch_one(pool).await?,
    ));
    Ok((rows.into_iter().map(SecretItem::from).collect(), matching, total))
}

/// A workspace's listing as the API writes it, `[{id, key, hasValue, updatedAt}]` sorted by
/// key. On SQLite the database builds the JSON text in one row: sqlx hands every SQLite row
/// across threads, and that hand-off dominated the profile of this route; in one row it is 1.8
/// times as fast with 1,000 secrets. PostgreSQL's driver decodes rows in place, and there
/// `json_agg` was slower than decoding and serde, so it keeps that path (see BENCHMARKS.md). A
/// test holds both equal to serde's output of [`list_secrets`].
pub async fn secrets_json(db: &Db, workspace_id: Uuid) -> Result<String, AppError> {
    match db {
        Db::Sqlite(pool) => Ok(sqlx::query_scalar(
            "SELECT COALESCE(json_group_array(json_object(
                 'id', lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || substr(hex(id), 13, 4)
                         || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)),
                 'key', key,
                 'hasValue', json(CASE WHEN has_value THEN 'true' ELSE 'false' END),
                 'updatedAt', replace(updated_at, '+00:00', 'Z')) ORDER BY key), '[]')
             FROM secrets WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_one(pool)
        .await?),
        Db::Postgres(_) => {
            let items = list_secrets(db, workspace_id).await?;
            Ok(serde_json::to_string(&items).map_err(anyhow::Error::from)?)
        }
    }
}

/// One secret with its ciphertext.
pub async fn secret_by_id(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Option<SecretRow>, AppError> {
    let sql = concat!(secret_row_from!(), " WHERE s.workspace_id = $1 AND s.id = $2");
    Ok(on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).bind(id).fetch_optional(pool).await?))
}

/// One secret by key, with its ciphertext.
pub async fn secret_by_key(db: &Db, workspace_id: Uuid, key: &str) -> Result<Option<SecretRow>, AppError> {
    let sql = concat!(secret_row_from!(), " WHERE s.workspace_id = $1 AND s.key = $2");
    Ok(on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).bind(key).fetch_optional(pool).await?))
}

/// Every secret of a workspace with its ciphertext, by key.
pub async fn secrets_with_ciphertext(db: &Db, workspace_id: Uuid) -> Result<Vec<SecretRow>, AppError> {
    let sql = concat!(secret_row_from!(), " WHERE s.workspace_id = $1 ORDER BY s.key");
    Ok(on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).fetch_all(pool).await?))
}

/// Inserts a new secret; 409 when the key exists in the workspace.
pub async fn insert_secret(
    tx: &mut Tx,
    workspace_id: Uuid,
    id: Uuid,
    key: &str,
    sealed: &Sealed,
    actor: &str,
) -> Result<SecretItem, AppError> {
    let sql = concat!(
        "INSERT INTO secrets (id, workspace_id, key, ciphertext, nonce, key_version, has_value, created_at, created_by, updated_at, updated_by, aad_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9, $10) RETURNING ", item_columns!());
    let row: SecretItemRow = on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(id).bind(workspace_id).bind(key).bind(&sealed.ciphertext).bind(&sealed.nonce)
        .bind(sealed.key_version).bind(sealed.has_value).bind(Utc::now()).bind(actor).bind(sealed.aad_version)
        .fetch_one(&mut *conn).await
        .map_err(on_constraint("secrets_workspace_key_unique", "a secret with this key already exists"))?);
    Ok(row.into())
}

/// Replaces a secret's sealed value; `None` when there is no such secret.
pub async fn update_secret_value(
    tx: &mut Tx,
    workspace_id: Uuid,
    id: Uuid,
    sealed: &Sealed,
    actor: &str,
) -> Result<Option<SecretItem>, AppError> {
    let sql = concat!(
        "UPDATE secrets SET ciphertext = $1, nonce = $2, key_version = $3, has_value = $4, updated_at = $5, updated_by = $6, aad_version = $9
         WHERE workspace_id = $7 AND id = $8 RETURNING ", item_columns!());
    let row: Option<SecretItemRow> = on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(&sealed.ciphertext).bind(&sealed.nonce).bind(sealed.key_version).bind(sealed.has_value)
        .bind(Utc::now()).bind(actor).bind(workspace_id).bind(id).bind(sealed.aad_version)
        .fetch_optional(&mut *conn).await?);
    Ok(row.map(SecretItem::from))
}

/// The key of a secret inside `tx`, or `None` when there is no such secret.
pub async fn secret_key_in(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Option<String>, AppError> {
    Ok(on_tx!(tx, conn => sqlx::query_scalar("SELECT key FROM secrets WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id).bind(id).fetch_optional(&mut *conn).await?))
}

/// A secret's listing columns, unchanged.
pub async fn secret_item(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Option<SecretItem>, AppError> {
    let sql = concat!("SELECT ", item_columns!(), " FROM secrets WHERE workspace_id = $1 AND id = $2");
    let row: Option<SecretItemRow> =
        on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).bind(id).fetch_optional(pool).await?);
    Ok(row.map(SecretItem::from))
}

/// Creates or updates a secret by key inside `tx`.
///
/// The value's associated data binds the secret id, which is only known once the row is
/// claimed: one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING id` claims (and locks) the row,
/// sealed for a new id; when an existing row won, the value is sealed again for its id and
/// written in the same transaction.
pub async fn upsert_secret_in(
    tx: &mut Tx,
    workspace_id: Uuid,
    key: &str,
    seal: impl Fn(Uuid) -> Sealed,
    actor: &str,
) -> Result<SecretItem, AppError> {
    let now = Utc::now();
    let new_id = Uuid::new_v4();
    let first = seal(new_id);
    let claim = concat!(
        "INSERT INTO secrets (id, workspace_id, key, ciphertext, nonce, key_version, has_value, created_at, created_by, updated_at, updated_by, aad_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9, $10)
         ON CONFLICT (workspace_id, key) DO UPDATE SET updated_at = excluded.updated_at, updated_by = excluded.updated_by
         RETURNING ", item_columns!());
    let rewrite = concat!(
        "UPDATE secrets SET ciphertext = $1, nonce = $2, key_version = $3, has_value = $4, aad_version = $6 WHERE id = $5
         RETURNING ", item_columns!());
    let row: SecretItemRow = on_tx!(tx, conn => {
        let claimed: SecretItemRow = sqlx::query_as(claim)
            .bind(new_id).bind(workspace_id).bind(key).bind(&first.ciphertext).bind(&first.nonce)
            .bind(first.key_version).bind(first.has_value).bind(now).bind(actor).bind(first.aad_version)
            .fetch_one(&mut *conn).await?;
        if claimed.id == new_id {
            claimed
        } else {
            let sealed = seal(claimed.id);
            sqlx::query_as(rewrite)
                .bind(&sealed.ciphertext).bind(&sealed.nonce).bind(sealed.key_version).bind(sealed.has_value).bind(claimed.id)
                .bind(sealed.aad_version)
                .fetch_one(&mut *conn).await?
        }
    });
    Ok(row.into())
}

/// A workspace's secrets inside `tx`, sorted by key.
pub async fn list_secrets_in(tx: &mut Tx, workspace_id: Uuid) -> Result<Vec<SecretItem>, AppError> {
    let sql = concat!("SELECT ", item_columns!(), " FROM secrets WHERE workspace_id = $1 ORDER BY key");
    let rows: Vec<SecretItemRow> =
        on_tx!(tx, conn => sqlx::query_as(sql).bind(workspace_id).fetch_all(&mut *conn).await?);
    Ok(rows.into_iter().map(SecretItem::from).collect())
}

/// Deletes a secret; its key when it existed.
pub async fn delete_secret(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Option<String>, AppError> {
    Ok(on_tx!(tx, conn => sqlx::query_scalar("DELETE FROM secrets WHERE workspace_id = $1 AND id = $2 RETURNING key")
        .bind(workspace_id).bind(id).fetch_optional(&mut *conn).await?))
}

// ---- API tokens --------------------------------------------------------------------------

/// Stores a new token (hash only).
pub async fn insert_token(tx: &mut Tx, row: &TokenRow) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO api_tokens (id, workspace_id, name, secret_hash, scopes, created_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)")
        .bind(row.id).bind(row.workspace_id).bind(&row.name).bind(&row.secret_hash).bind(&row.scopes)
        .bind(row.created_at).bind(row.expires_at).execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// One token by id.
pub async fn token_by_id(db: &Db, id: Uuid) -> Result<Option<TokenRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, workspace_id, name, secret_hash, scopes, created_at, expires_at, revoked_at FROM api_tokens WHERE id = $1")
        .bind(id).fetch_optional(pool).await?))
}

/// Tokens, newest first, optionally of one workspace.
pub async fn list_tokens(db: &Db, workspace_id: Option<Uuid>) -> Result<Vec<TokenRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, workspace_id, name, secret_hash, scopes, created_at, expires_at, revoked_at FROM api_tokens
         WHERE ($1 IS NULL OR workspace_id = $1) ORDER BY created_at DESC, id")
        .bind(workspace_id).fetch_all(pool).await?))
}

/// Marks a token revoked and audits it, in one transaction; whether it existed and was not
/// already revoked.
pub async fn revoke_token(db: &Db, id: Uuid, only_workspace: Option<Uuid>, actor: &str) -> Result<bool, AppError> {
    let mut tx = db.begin().await?;
    let workspace: Option<Uuid> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR workspace_id = $3) RETURNING workspace_id")
        .bind(Utc::now()).bind(id).bind(only_workspace).fetch_optional(&mut *conn).await?);
    let Some(workspace_id) = workspace else { return Ok(false) };
    let detail = format!("token {id}");
    audit_in(
        &mut tx,
        &Audit { workspace_id: Some(workspace_id), actor, action: "token.revoked", key: None, detail: Some(&detail) },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

// ---- sessions and sign-in failures -------------------------------------------------------

/// Where a session was opened: the client's address and its user agent.
pub struct SessionOrigin<'a> {
    pub client: &'a str,
    pub user_agent: Option<&'a str>,
}

/// Opens a session after a successful sign-in: forgets the user's failed attempts, ends the
/// session this browser held before (`replaces`), stores the new one and audits the sign-in,
/// in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn start_session(
    db: &Db,
    id: Uuid,
    secret_hash: &[u8],
    user_id: Uuid,
    username: &str,
    expires_at: DateTime<Utc>,
    origin: &SessionOrigin<'_>,
    replaces: Option<Uuid>,
) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM sign_in_failures WHERE username = $1").bind(username).execute(&mut *conn).await?;
        if let Some(old) = replaces {
            sqlx::query("DELETE FROM sessions WHERE id = $1").bind(old).execute(&mut *conn).await?;
        }
        sqlx::query("INSERT INTO sessions (id, secret_hash, user_id, created_at, expires_at, client, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id).bind(secret_hash).bind(user_id).bind(Utc::now()).bind(expires_at).bind(origin.client).bind(origin.user_agent)
            .execute(&mut *conn).await?;
    });
    let actor = format!("user:{username}");
    let detail = format!("from {}", origin.client);
    audit_in(
        &mut tx,
        &Audit { workspace_id: None, actor: &actor, action: "user.signed_in", key: None, detail: Some(&detail) },
    )
    .await?;
    tx.commit().await?;
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

/// Ends a session.
pub async fn delete_session(db: &Db, id: Uuid) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(pool).await?.rows_affected());
    Ok(())
}

/// Ends sessions of `user_id`: one (`only`), or all but `keep`; audited in the same
/// transaction. How many ended.
pub async fn end_sessions(
    db: &Db,
    user_id: Uuid,
    username: &str,
    only: Option<Uuid>,
    keep: Option<Uuid>,
) -> Result<u64, AppError> {
    let mut tx = db.begin().await?;
    let ended = on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR id <> $3)")
        .bind(user_id).bind(only).bind(keep).execute(&mut *conn).await?.rows_affected());
    if ended > 0 {
        let actor = format!("user:{username}");
        let detail = format!("{ended} session(s)");
        audit_in(
            &mut tx,
            &Audit {
                workspace_id: None,
                actor: &actor,
                action: "user.sessions_ended",
                key: None,
                detail: Some(&detail),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// Replaces a user's password hash, ends every other session of the user and forgets their
/// failed attempts, audited, in one transaction.
pub async fn change_password(
    db: &Db,
    user_id: Uuid,
    username: &str,
    hash: &str,
    keep_session: Uuid,
) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    let ended = on_tx!(&mut tx, conn => {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(user_id).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM sign_in_failures WHERE username = $1").bind(username).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2").bind(user_id).bind(keep_session).execute(&mut *conn).await?.rows_affected()
    });
    let actor = format!("user:{username}");
    let detail = format!("ended {ended} other session(s)");
    audit_in(
        &mut tx,
        &Audit { workspace_id: None, actor: &actor, action: "user.password_changed", key: None, detail: Some(&detail) },
    )
    .await?;
    tx.commit().await?;
    Ok(())
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
    if let Tx::Postgres(t) = &mut tx {
        for lock in [format!("sign-in user {username}"), format!("sign-in client {client}")] {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(lock).execute(&mut **t).await?;
        }
    }
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
    let actor = format!("user:{username}");
    let detail = format!("{what} from {client}");
    audit(
        db,
        &Audit { workspace_id: None, actor: &actor, action: "user.sign_in_failed", key: None, detail: Some(&detail) },
    )
    .await
}

// ---- audit log ---------------------------------------------------------------------------

/// An audit entry to write; never holds a value.
pub struct Audit<'a> {
    pub workspace_id: Option<Uuid>,
    pub actor: &'a str,
    pub action: &'a str,
    pub key: Option<&'a str>,
    pub detail: Option<&'a str>,
}

const AUDIT_INSERT: &str =
    "INSERT INTO audit_events (id, workspace_id, actor, action, key, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Records an audit entry inside the transaction of the change it describes.
pub async fn audit_in(tx: &mut Tx, entry: &Audit<'_>) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query(AUDIT_INSERT)
        .bind(Uuid::new_v4()).bind(entry.workspace_id).bind(entry.actor).bind(entry.action).bind(entry.key).bind(entry.detail).bind(Utc::now())
        .execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// Records an audit entry for something that changes no other row (a read, a sign-in).
pub async fn audit(db: &Db, entry: &Audit<'_>) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query(AUDIT_INSERT)
        .bind(Uuid::new_v4()).bind(entry.workspace_id).bind(entry.actor).bind(entry.action).bind(entry.key).bind(entry.detail).bind(Utc::now())
        .execute(pool).await?.rows_affected());
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    key: Option<String>,
    detail: Option<String>,
}

/// A user's own sign-in events (successes and failures), newest first.
pub async fn sign_in_events(db: &Db, username: &str, limit: i64) -> Result<Vec<crate::model::AuditEvent>, AppError> {
    let actor = format!("user:{username}");
    let rows: Vec<AuditRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, at, actor, action, key, detail FROM audit_events WHERE workspace_id IS NULL AND actor = $1 ORDER BY at DESC, id LIMIT $2")
        .bind(actor).bind(limit).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|r| crate::model::AuditEvent {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            key: r.key,
            detail: r.detail,
        })
        .collect())
}

/// A workspace's audit log, newest first; `search` matches action, actor or key.
pub async fn audit_events(
    db: &Db,
    workspace_id: Uuid,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<crate::model::AuditEvent>, AppError> {
    let pattern = search.filter(|s| !s.is_empty()).map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    let rows: Vec<AuditRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, at, actor, action, key, detail FROM audit_events WHERE workspace_id = $1
         AND ($2 IS NULL OR LOWER(action) LIKE $2 ESCAPE '\\' OR LOWER(actor) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(key, '')) LIKE $2 ESCAPE '\\')
         ORDER BY at DESC, id LIMIT $3")
        .bind(workspace_id).bind(pattern).bind(limit).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|r| crate::model::AuditEvent {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            key: r.key,
            detail: r.detail,
        })
        .collect())
}

/// Escapes `\`, `%` and `_` so a search for them matches them literally (`LIKE ... ESCAPE '\'`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
