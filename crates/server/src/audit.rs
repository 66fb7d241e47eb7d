//! The audit log: every record says where the request came from;
//! `GET /v1/admin/audit/verify` walks every audit chain and names the first broken link.
//!
//! Signed checkpoints anchor the chains' heads: at start, every minute when the log grew,
//! after each settlement run and on an operator's request, every chain's head is signed
//! with the platform's receipt key. The walk checks the log against the newest checkpoint,
//! so a chain cut at its tail (head row moved back to match) or removed whole is found. A
//! checkpoint is verified with the public key of the sealed seed, never with the public key
//! column an insider could edit.

use crate::AppState;
use crate::error::ApiResult;
use crate::secrets::Sealer;
use crate::util::now;
use axum::Json;
use axum::extract::State;
use saoma_api::checkpoint::{self, ChainHead, CheckpointClaims};
use saoma_api::{AuditVerification, BrokenLink, CheckpointSeen, CheckpointTaken};
use saoma_core::audit::{AuditFields, ChainWalk, StoredLink, chains_missing};
use saoma_store::{AuditCheckpointRow, AuditRecord, AuditRow, Store, StoreError, WriteTx};

tokio::task_local! {
    /// The peer address of the request being served (set by `edge::guard`).
    pub static PEER: Option<String>;
}

/// Appends audit records with where the request came from.
pub trait Audit {
    /// Appends `a`, its detail stamped with `from` (the peer address; absent for work the
    /// server does on its own).
    fn audit(
        &mut self,
        a: &AuditRecord<'_>,
        now: &str,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

impl Audit for WriteTx {
    async fn audit(&mut self, a: &AuditRecord<'_>, now: &str) -> Result<(), StoreError> {
        let mut detail = a.detail.clone();
        if let Some(map) = detail.as_object_mut()
            && !map.contains_key("from")
        {
            let from = PEER.try_with(Clone::clone).ok().flatten();
            map.insert("from".into(), from.into());
        }
        let stamped = AuditRecord { detail, ..*a };
        self.insert_audit(&stamped, now).await
    }
}

/// Records read at a time: a chain of any length is checked in bounded memory.
const PAGE: i64 = 2_000;

fn link<'a>(chain: i64, r: &'a AuditRow) -> StoredLink<'a> {
    StoredLink {
        fields: AuditFields {
            chain,
            chain_seq: r.chain_seq.unwrap_or(0),
            actor: &r.actor,
            action: &r.action,
            object_id: &r.object_id,
            detail: &r.detail,
            created_at: &r.created_at,
        },
        prev_hash: r.prev_hash.as_deref().unwrap_or(""),
        hash: r.hash.as_deref().unwrap_or(""),
    }
}

/// Walks one chain a page at a time, through the checkpoint's head of it if there is one;
/// the first broken link, with its record if it exists.
async fn walk_chain(
    state: &AppState,
    chain: i64,
    head: (i64, &str),
    anchor: Option<(i64, &str)>,
) -> Result<(i64, Option<BrokenLink>), StoreError> {
    let mut walk = ChainWalk::anchored(chain, anchor);
    loop {
        let rows = state.store.audit_chain(chain, walk.seen(), PAGE).await?;
        let links: Vec<StoredLink<'_>> = rows.iter().map(|r| link(chain, r)).collect();
        let result = walk
            .step(&links)
            .and_then(|()| if rows.len() < PAGE as usize { walk.finish(Some(head)) } else { Ok(()) });
        match result {
            Err(b) => {
                let row = rows.iter().find(|r| r.chain_seq == Some(b.chain_seq));
                let broken = BrokenLink {
                    chain: Some(b.chain),
                    chain_seq: Some(b.chain_seq),
                    audit_seq: Some(row.map(|r| r.seq)),
                    action: Some(row.map(|r| r.action.clone())),
                    object_id: Some(row.map(|r| r.object_id.clone())),
                    ..BrokenLink::because(b.reason)
                };
                return Ok((walk.seen(), Some(broken)));
            }
            Ok(()) if rows.len() < PAGE as usize => return Ok((walk.seen(), None)),
            Ok(()) => {}
        }
    }
}

/// Signs a checkpoint of every chain's head, unless the newest checkpoint already says the
/// same. Returns what was signed, or `None` when nothing changed.
pub async fn checkpoint(store: &Store, sealer: &Sealer) -> Result<Option<CheckpointClaims>, StoreError> {
    let latest = match store.latest_audit_checkpoint().await? {
        Some(row) => open_checkpoint(store, sealer, &row).await?.ok(),
        None => None,
    };
    let mut tx = store.begin().await?;
    let heads: Vec<ChainHead> = tx
        .audit_heads()
        .await?
        .into_iter()
        .map(|(chain, seq_no, hash)| ChainHead { chain, seq_no, hash })
        .collect();
    if latest.is_some_and(|c| c.heads == heads) {
        return Ok(None);
    }
    let key = tx.signing_receipt_key().await?.ok_or_else(|| StoreError::Corrupt("no receipt key".into()))?;
    let seed = crate::receipts::open_seed(sealer, &key)?;
    let (t, now) = now();
    let claims =
        CheckpointClaims { created_at: now.clone(), iat: t.timestamp(), chains: heads.len() as i64, heads };
    let jws = checkpoint::sign(&claims, &seed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.insert_audit_checkpoint(&now, &key.kid, &jws).await?;
    tx.commit().await?;
    Ok(Some(claims))
}

/// What a stored checkpoint says, or why it cannot be believed. It must be signed by one of
/// the platform's receipt keys, whose public key is derived from the sealed seed.
async fn open_checkpoint(
    store: &Store,
    sealer: &Sealer,
    row: &AuditCheckpointRow,
) -> Result<Result<CheckpointClaims, String>, StoreError> {
    let kid = checkpoint::key_id_of(&row.jws);
    let keys = store.receipt_keys().await?;
    let Some(key) = keys.iter().find(|k| Some(&k.kid) == kid.as_ref()) else {
        return Ok(Err("it is signed by a key the platform does not have".into()));
    };
    let seed = match crate::receipts::open_seed(sealer, key) {
        Ok(seed) => seed,
        Err(e) => return Ok(Err(format!("its key's seed does not open: {e}"))),
    };
    let public = saoma_api::receipt::public_key(&seed);
    let jwks = saoma_api::Jwks { keys: vec![saoma_api::receipt::jwk(&public)] };
    Ok(checkpoint::verify(&row.jws, &jwks.to_value()).map_err(|e| e.to_string()))
}

/// `POST /v1/admin/audit/checkpoints`: signs a checkpoint now (if the log grew since the
/// newest one) and answers the newest, JWS included, for the auditor to keep elsewhere.
#[utoipa::path(
    operation_id = "audit_take_checkpoint",
    post,
    path = "/v1/admin/audit/checkpoints",
    tag = "admin",
    summary = "Signs an audit checkpoint now.",
    responses((status = 200, description = "the signed checkpoint", body = CheckpointTaken)),
    security(("operator_token" = [])),
)]
pub async fn take_checkpoint(State(state): State<AppState>) -> ApiResult<Json<CheckpointTaken>> {
    let written = checkpoint(&state.store, &state.keys.sealer).await?.is_some();
    let row = state
        .store
        .latest_audit_checkpoint()
        .await?
        .ok_or_else(|| StoreError::Corrupt("no checkpoint".into()))?;
    Ok(Json(CheckpointTaken {
        written,
        seq: row.seq,
        created_at: row.created_at,
        kid: row.kid,
        jws: row.jws,
    }))
}

/// Verifies each chain against its head and the newest signed checkpoint; `intact` is
/// false when any link is broken, a chain the checkpoint names is gone or cut short, or
/// the checkpoint itself is missing or forged.
#[utoipa::path(
    operation_id = "audit_verify",
    get,
    path = "/v1/admin/audit/verify",
    tag = "admin",
    summary = "Verifies the audit log.",
    responses((status = 200, description = "whether the audit chains and checkpoints hold, and what is broken", body = AuditVerification)),
    security(("operator_token" = [])),
)]
pub async fn verify(State(state): State<AppState>) -> ApiResult<Json<AuditVerification>> {
    let mut broken = Vec::new();
    let mut records = 0;
    let heads = state.store.audit_heads().await?;
    let (headless, unsealed) = state.store.audit_strays().await?;
    let mut anchors: Vec<ChainHead> = Vec::new();
    let checkpoint = match state.store.latest_audit_checkpoint().await? {
        None if heads.is_empty() && headless.is_empty() => None,
        None => {
            broken.push(BrokenLink::because(
                "there is no signed checkpoint although the log has records: they were removed",
            ));
            None
        }
        Some(row) => match open_checkpoint(&state.store, &state.keys.sealer, &row).await? {
            Ok(c) => {
                anchors = c.heads;
                Some(CheckpointSeen {
                    seq: row.seq,
                    created_at: c.created_at,
                    chains: Some(c.chains),
                    kid: Some(row.kid),
                    valid: None,
                })
            }
            Err(why) => {
                let reason = format!("the newest checkpoint ({}) cannot be believed: {why}", row.seq);
                broken.push(BrokenLink { checkpoint: Some(row.seq), ..BrokenLink::because(reason) });
                Some(CheckpointSeen {
                    seq: row.seq,
                    created_at: row.created_at,
                    chains: None,
                    kid: None,
                    valid: Some(false),
                })
            }
        },
    };
    for (chain, seq_no, head_hash) in &heads {
        let anchor = anchors.iter().find(|a| a.chain == *chain).map(|a| (a.seq_no, a.hash.as_str()));
        let (seen, bad) = walk_chain(&state, *chain, (*seq_no, head_hash), anchor).await?;
        records += seen;
        broken.extend(bad);
    }
    for chain in &headless {
        broken.push(chain_gone(*chain, "the chain's head was removed"));
    }
    let present: Vec<i64> = heads.iter().map(|h| h.0).chain(headless.iter().copied()).collect();
    let named: Vec<(i64, i64)> = anchors.iter().map(|a| (a.chain, a.seq_no)).collect();
    for (chain, seen) in chains_missing(&named, &present) {
        let reason = format!("the chain was removed whole: the signed checkpoint saw {seen} records");
        broken.push(chain_gone(chain, reason));
    }
    Ok(Json(AuditVerification {
        intact: broken.is_empty(),
        records,
        chains: heads.len() as i64,
        checkpoint,
        broken,
        unsealed_before_chaining: unsealed,
    }))
}

/// A chain broken from its first record on (its head or the whole chain removed).
fn chain_gone(chain: i64, reason: impl Into<String>) -> BrokenLink {
    BrokenLink { chain: Some(chain), chain_seq: Some(1), ..BrokenLink::because(reason) }
}
