//! PostgreSQL: a secret's upsert in one round trip. The function `lss_upsert_secret`
//! (migration 0013) does in one statement what a write transaction does in about ten: it
//! shares the data key, locks the row, writes the value sealed for the id and version the
//! server expected, keeps the version, writes the outbox event and appends the audit entry. When
//! the row is not what the server expected it writes nothing and says what is there. Upserts
//! sent at the same time share a transaction and its commit (`pg_group_commit`).

use chrono::{DateTime, Utc};
use sqlx::{Execute, FromRow};
use uuid::Uuid;

use crate::model::{Event, SecretItem};
use crate::server::domain::audit::{entry_time, Link, GENESIS};
use crate::server::domain::AuditAction;
use crate::server::error::AppError;
use crate::server::store::{Db, Sealed};

/// One upsert, sealed for `id` at `version`.
pub struct OneTripUpsert<'a> {
    pub workspace_id: Uuid,
    pub key: &'a str,
    pub id: Uuid,
    pub version: i64,
    pub sealed: &'a Sealed,
    pub actor: &'a str,
    /// The version a check-and-set names (0: the key is not stored).
    pub expected: Option<i64>,
    /// Versions kept per secret.
    pub keep: i64,
}

/// What the database answered.
#[derive(Debug)]
pub enum OneTrip {
    /// Written, committed, and dropped from memory.
    Written(SecretItem),
    /// Nothing written: the row is at `version` with `id` (none: the key is not stored).
    Reseal { id: Option<Uuid>, version: i64 },
    /// Nothing written: another data key version is active.
    DataKeyChanged,
    /// Nothing written: the check-and-set named another version; the current one.
    Mismatch { current: i64 },
    /// Nothing written: the workspace requires check-and-set.
    Required,
    /// The workspace does not exist.
    NotFound,
}

type Answer = (String, Option<Uuid>, Option<i64>, Option<bool>, Option<DateTime<Utc>>);

const UPSERT: &str = "SELECT o_outcome, o_id, o_version, o_has_value, o_updated_at FROM lss_upsert_secret(
     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)";

/// Runs the upsert `w` as one statement on PostgreSQL, committed with the upserts sent at the
/// same time (never on SQLite, whose writes are group commits on one connection already).
pub async fn upsert_secret_one_trip(db: &Db, w: &OneTripUpsert<'_>) -> Result<OneTrip, AppError> {
    let Some(writes) = &db.pg_writes else {
        unreachable!("BUG: one-trip upserts are PostgreSQL's");
    };
    let now = Utc::now();
    let event = Event::SecretUpserted { workspace_id: w.workspace_id, secret_id: w.id, key: w.key.to_string() };
    let payload = serde_json::to_string(&event).expect("BUG: events always serialize");
    let action = AuditAction::SecretUpserted.as_str();
    let (audit_id, at) = (Uuid::new_v4(), entry_time(now));
    // The entry's place in its chain is the database's to give: the hash is taken there over
    // the encoding around it.
    let link = Link {
        workspace_id: Some(w.workspace_id),
        seq: 0,
        id: audit_id,
        at,
        actor: w.actor,
        action,
        key: Some(w.key),
        detail: None,
        run_id: None,
    };
    let (head, tail) = link.encoding_around_place();
    let mut query = sqlx::query::<sqlx::Postgres>(UPSERT)
        .bind(w.workspace_id)
        .bind(w.key)
        .bind(w.id)
        .bind(w.version)
        .bind(w.sealed.key_version)
        .bind(&w.sealed.ciphertext)
        .bind(&w.sealed.nonce)
        .bind(w.sealed.aad_version)
        .bind(w.sealed.has_value)
        .bind(w.actor)
        .bind(now)
        .bind(w.expected)
        .bind(w.keep)
        .bind(audit_id)
        .bind(action)
        .bind(at)
        .bind(head)
        .bind(tail)
        .bind(&GENESIS[..])
        .bind(Uuid::new_v4())
        .bind(event.name())
        .bind(payload);
    let arguments = query
        .take_arguments()
        .map_err(|err| AppError::Internal(anyhow::anyhow!("the upsert's arguments did not encode: {err}")))?
        .unwrap_or_default();
    // Committed with the upserts that came at the same time (see `pg_group_commit`).
    let row = writes.fetch_one(UPSERT, arguments).await?;
    let (outcome, id, version, has_value, updated_at) = Answer::from_row(&row)?;
    Ok(match outcome.as_str() {
        "written" => {
            db.cache().apply([&event]);
            let missing = || AppError::Internal(anyhow::anyhow!("lss_upsert_secret wrote without answering the row"));
            OneTrip::Written(SecretItem {
                id: id.ok_or_else(missing)?,
                key: w.key.to_string(),
                has_value: has_value.ok_or_else(missing)?,
                updated_at: updated_at.ok_or_else(missing)?,
                version: version.ok_or_else(missing)?,
            })
        }
        "reseal" => OneTrip::Reseal { id, version: version.unwrap_or(0) },
        "data_key" => OneTrip::DataKeyChanged,
        "mismatch" => OneTrip::Mismatch { current: version.unwrap_or(0) },
        "required" => OneTrip::Required,
        "not_found" => OneTrip::NotFound,
        other => return Err(AppError::Internal(anyhow::anyhow!("lss_upsert_secret answered {other:?}"))),
    })
}
