//! Reading the audit log: a workspace's entries (filtered by action, actor or key, with the
//! names of who acted), a user's own sign-ins and failed attempts, and the chains checked
//! (`audit verify`) or streamed with their hashes (`audit export`). Entries are written by the
//! services, each in the transaction of the change it describes.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::model::AuditEvent;
use crate::server::domain::audit::{Break, ChainCheck};
use crate::server::domain::{Actor, ActorKind};
use crate::server::error::AppError;
use crate::server::service::secrets::SecretService;
use crate::server::store::{self, ChainRow, Db};

/// Entries a workspace's log shows at most.
const LOG_LIMIT: i64 = 500;
/// Sign-in events the account page shows.
const SIGN_INS_LIMIT: i64 = 20;

/// A workspace's audit log, newest first; `search` matches action, actor or key literally.
/// Each entry names who acted (the user, or the token by its name). Details pass the
/// workspace's leak guard (a detail is built from input, which might hold a value).
pub async fn workspace_log(
    secrets: &SecretService,
    workspace_id: Uuid,
    search: Option<&str>,
) -> Result<Vec<AuditEvent>, AppError> {
    let mut events = store::audit_events(secrets.db(), workspace_id, search, LOG_LIMIT).await?;
    let tokens: HashMap<Uuid, String> = store::list_tokens(secrets.db(), Some(workspace_id))
        .await?
        .into_iter()
        .map(|token| (token.id, token.name))
        .collect();
    let guard = secrets.leak_guard(workspace_id).await?;
    for event in &mut events {
        event.actor_name = match Actor(event.actor.clone()).kind() {
            ActorKind::User(name) => Some(name.to_owned()),
            ActorKind::Token(id) => tokens.get(&id).cloned(),
            ActorKind::Cli | ActorKind::System => None,
        };
        if let Some(detail) = event.detail.as_mut().filter(|_| !guard.is_empty()) {
            *detail = guard.mask_str(detail).0;
        }
    }
    Ok(events)
}

/// A user's recent sign-ins and failed attempts, newest first.
pub async fn sign_ins(db: &Db, username: &str) -> Result<Vec<AuditEvent>, AppError> {
    store::sign_in_events(db, username, SIGN_INS_LIMIT).await
}

/// What checking one chain found.
#[derive(Debug)]
pub struct ChainReport {
    /// The workspace, or `None` for the accounts' chain.
    pub workspace_id: Option<Uuid>,
    /// Entries that fit, from the first.
    pub entries: i64,
    /// The first entry that does not fit (its id and place, when it has them) and why.
    pub broken: Option<(Option<Uuid>, Option<i64>, Break)>,
}

/// Checks the chains of `workspace_id`, or of every workspace and the accounts, each up to its
/// first entry that does not fit. An unknown workspace is not found.
pub async fn verify(db: &Db, workspace_id: Option<Uuid>) -> Result<Vec<ChainReport>, AppError> {
    let chains = match workspace_id {
        Some(id) if !store::workspace_exists(db, id).await? => return Err(AppError::NotFound),
        Some(id) => vec![Some(id)],
        None => {
            let mut all = vec![None];
            all.extend(store::all_workspaces(db).await?.into_iter().map(|(id, _)| Some(id)));
            all
        }
    };
    let mut reports = Vec::with_capacity(chains.len());
    for chain in chains {
        reports.push(verify_chain(db, chain).await?);
    }
    Ok(reports)
}

async fn verify_chain(db: &Db, workspace_id: Option<Uuid>) -> Result<ChainReport, AppError> {
    let mut check = ChainCheck::default();
    let mut broken = None;
    let mut last = None;
    store::walk_chain(db, workspace_id, |row: ChainRow| {
        let fits = match (&row.seq, &row.prev_hash, &row.hash) {
            (Some(_), Some(prev), Some(hash)) => check.next(&row.link(), prev, hash),
            _ => Err(Break::Unchained),
        };
        match fits {
            Ok(()) => last = Some(row.id),
            Err(why) => broken = Some((Some(row.id), row.seq, why)),
        }
        broken.is_none()
    })
    .await?;
    if broken.is_none() {
        let head = store::chain_head(db, workspace_id).await?;
        if let Err(why) = check.finish(head.as_ref().map(|(seq, hash)| (*seq, &hash[..]))) {
            broken = Some((last, Some(check.entries()), why));
        }
    }
    Ok(ChainReport { workspace_id, entries: check.entries(), broken })
}

/// One entry of `audit export`: everything its hash covers, and the hashes (hex).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedEntry {
    pub id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub seq: Option<i64>,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub key: Option<String>,
    pub detail: Option<String>,
    pub run_id: Option<Uuid>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl From<ChainRow> for ExportedEntry {
    fn from(row: ChainRow) -> ExportedEntry {
        let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        ExportedEntry {
            id: row.id,
            workspace_id: row.workspace_id,
            seq: row.seq,
            at: row.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            actor: row.actor,
            action: row.action,
            key: row.key,
            detail: row.detail,
            run_id: row.run_id,
            prev_hash: row.prev_hash.map(hex),
            hash: row.hash.map(hex),
        }
    }
}

/// Calls `out` with each entry of a workspace's chain in order, as it is stored (so its hash
/// can be checked by anyone), until `out` fails. An unknown workspace is not found.
pub async fn export(
    db: &Db,
    workspace_id: Uuid,
    mut out: impl FnMut(ExportedEntry) -> std::io::Result<()>,
) -> Result<(), AppError> {
    if !store::workspace_exists(db, workspace_id).await? {
        return Err(AppError::NotFound);
    }
    let mut failed = None;
    store::walk_chain(db, Some(workspace_id), |row| match out(row.into()) {
        Ok(()) => true,
        Err(err) => {
            failed = Some(err);
            false
        }
    })
    .await?;
    match failed {
        // A closed pipe (`| head`) ends the export quietly.
        Some(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(AppError::Internal(err.into())),
        _ => Ok(()),
    }
}
