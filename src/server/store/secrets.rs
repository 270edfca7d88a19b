//! The `secrets` table: listings (never a value, kept in memory), pages, rows with their
//! ciphertext, inserts, updates, the atomic upsert, re-sealing under a new data key.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::SecretItem;
use crate::server::error::{on_constraint, AppError};
use crate::server::store::{escape_like, on_conn, on_pool, on_tx, Conn, Db, Listing, Tx};

/// A secret row with its ciphertext (never leaves the server).
#[derive(sqlx::FromRow)]
pub struct SecretRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub key: String,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_version: i32,
    /// The associated-data version of the ciphertext (see `keys::DataKey::open_value`).
    pub aad_version: i32,
    /// The secret's version this value is.
    pub version: i64,
    /// The data key it is sealed under, wrapped; read in the same statement, so a rotation
    /// retiring that key cannot slip in between.
    pub wrapped_key: Vec<u8>,
}

/// The columns of [`SecretRow`], from `secrets s` joined with its data key `k`.
macro_rules! secret_row_from {
    () => {
        "SELECT s.id, s.workspace_id, s.key, s.ciphertext, s.nonce, s.key_version, s.aad_version, s.version, k.wrapped_key
         FROM secrets s JOIN workspace_keys k ON k.workspace_id = s.workspace_id AND k.version = s.key_version"
    };
}

/// The listing columns of a secret.
#[derive(sqlx::FromRow)]
pub(super) struct SecretItemRow {
    id: Uuid,
    key: String,
    has_value: bool,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<SecretItemRow> for SecretItem {
    fn from(r: SecretItemRow) -> Self {
        SecretItem { id: r.id, key: r.key, has_value: r.has_value, updated_at: r.updated_at, version: r.version }
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

/// The listing columns of `secrets`, spliced into statements with `concat!`.
macro_rules! item_columns {
    () => {
        "id, key, has_value, updated_at, version"
    };
}

/// A workspace's secrets, sorted by key; no ciphertext is read.
pub async fn list_secrets(conn: impl Into<Conn<'_>>, workspace_id: Uuid) -> Result<Vec<SecretItem>, AppError> {
    let sql = concat!("SELECT ", item_columns!(), " FROM secrets WHERE workspace_id = $1 ORDER BY key");
    let rows: Vec<SecretItemRow> =
        on_conn!(conn.into(), exec => sqlx::query_as(sql).bind(workspace_id).fetch_all(exec).await?);
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

/// A workspace's listing, sorted by key (bytewise, on both engines): from memory when it is
/// fresh (see [`ReadCache`]), else read and kept.
pub async fn listing(db: &Db, workspace_id: Uuid) -> Result<Arc<Listing>, AppError> {
    let cache = db.fresh_cache().await?;
    if let Some(listing) = cache.listing(workspace_id) {
        return Ok(listing);
    }
    let ticket = cache.listing_ticket(workspace_id);
    let mut items = list_secrets(db, workspace_id).await?;
    // PostgreSQL orders by the database's collation; the cursor of a page compares bytes.
    items.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let listing = Arc::new(Listing::new(items));
    cache.store_listing(workspace_id, ticket, listing.clone());
    Ok(listing)
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

/// How many secrets a workspace holds and when the newest change was: what a cached matcher
/// over its values is checked against.
pub async fn secrets_fingerprint(db: &Db, workspace_id: Uuid) -> Result<(i64, Option<DateTime<Utc>>), AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT COUNT(*), MAX(updated_at) FROM secrets WHERE workspace_id = $1")
        .bind(workspace_id).fetch_one(pool).await?))
}

/// [`secrets_fingerprint`] over every workspace.
pub async fn all_secrets_fingerprint(db: &Db) -> Result<(i64, Option<DateTime<Utc>>), AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT COUNT(*), MAX(updated_at) FROM secrets").fetch_one(pool).await?))
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

/// Replaces a secret's sealed value with `version` of it; `None` when there is no such secret.
pub async fn update_secret_value(
    tx: &mut Tx,
    workspace_id: Uuid,
    id: Uuid,
    version: i64,
    sealed: &Sealed,
    actor: &str,
) -> Result<Option<SecretItem>, AppError> {
    let sql = concat!(
        "UPDATE secrets SET ciphertext = $1, nonce = $2, key_version = $3, has_value = $4, updated_at = $5, updated_by = $6, aad_version = $9, version = $10
         WHERE workspace_id = $7 AND id = $8 RETURNING ", item_columns!());
    let row: Option<SecretItemRow> = on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(&sealed.ciphertext).bind(&sealed.nonce).bind(sealed.key_version).bind(sealed.has_value)
        .bind(Utc::now()).bind(actor).bind(workspace_id).bind(id).bind(sealed.aad_version).bind(version)
        .fetch_optional(&mut *conn).await?);
    Ok(row.map(SecretItem::from))
}

/// A secret's listing columns, unchanged.
pub async fn secret_item(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Option<SecretItem>, AppError> {
    let sql = concat!("SELECT ", item_columns!(), " FROM secrets WHERE workspace_id = $1 AND id = $2");
    let row: Option<SecretItemRow> =
        on_pool!(db, pool => sqlx::query_as(sql).bind(workspace_id).bind(id).fetch_optional(pool).await?);
    Ok(row.map(SecretItem::from))
}

/// Creates or updates a secret by key inside `tx`; `check` sees the version an existing secret
/// is at before it is replaced (version 0: there was none) and may refuse the write.
///
/// The value's associated data binds the secret id and version, which are only known once the
/// row is claimed: one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` claims (and locks) the
/// row, sealed as version 1 of a new id; when an existing row won, the value is sealed again as
/// its next version and written in the same transaction.
pub async fn upsert_secret_in(
    tx: &mut Tx,
    workspace_id: Uuid,
    key: &str,
    seal: impl Fn(Uuid, i64) -> Sealed,
    check: impl Fn(i64) -> Result<(), AppError>,
    actor: &str,
) -> Result<SecretItem, AppError> {
    let now = Utc::now();
    let new_id = Uuid::new_v4();
    let first = seal(new_id, 1);
    let claim = concat!(
        "INSERT INTO secrets (id, workspace_id, key, ciphertext, nonce, key_version, has_value, created_at, created_by, updated_at, updated_by, aad_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9, $10)
         ON CONFLICT (workspace_id, key) DO UPDATE SET updated_at = excluded.updated_at, updated_by = excluded.updated_by
         RETURNING ", item_columns!());
    let rewrite = concat!(
        "UPDATE secrets SET ciphertext = $1, nonce = $2, key_version = $3, has_value = $4, aad_version = $6, version = $7 WHERE id = $5
         RETURNING ", item_columns!());
    let row: SecretItemRow = on_tx!(tx, conn => {
        let claimed: SecretItemRow = sqlx::query_as(claim)
            .bind(new_id).bind(workspace_id).bind(key).bind(&first.ciphertext).bind(&first.nonce)
            .bind(first.key_version).bind(first.has_value).bind(now).bind(actor).bind(first.aad_version)
            .fetch_one(&mut *conn).await?;
        if claimed.id == new_id {
            check(0)?;
            claimed
        } else {
            check(claimed.version)?;
            let version = claimed.version + 1;
            let sealed = seal(claimed.id, version);
            sqlx::query_as(rewrite)
                .bind(&sealed.ciphertext).bind(&sealed.nonce).bind(sealed.key_version).bind(sealed.has_value).bind(claimed.id)
                .bind(sealed.aad_version).bind(version)
                .fetch_one(&mut *conn).await?
        }
    });
    Ok(row.into())
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
