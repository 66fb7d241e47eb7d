//! The audit log: every record says where the request came from, and
//! `GET /v1/admin/audit/verify` walks every audit chain and names the first broken link.

use crate::AppState;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use saoma_core::audit::{AuditFields, ChainWalk, StoredLink};
use saoma_store::{AuditRecord, AuditRow, StoreError, WriteTx};
use serde_json::{Value, json};

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

/// Walks one chain a page at a time; the first broken link, with its record if it exists.
async fn walk_chain(
    state: &AppState,
    chain: i64,
    head: (i64, &str),
) -> Result<(i64, Option<Value>), StoreError> {
    let mut walk = ChainWalk::new(chain);
    loop {
        let rows = state.store.audit_chain(chain, walk.seen(), PAGE).await?;
        let links: Vec<StoredLink<'_>> = rows.iter().map(|r| link(chain, r)).collect();
        let result = walk
            .step(&links)
            .and_then(|()| if rows.len() < PAGE as usize { walk.finish(Some(head)) } else { Ok(()) });
        match result {
            Err(b) => {
                let row = rows.iter().find(|r| r.chain_seq == Some(b.chain_seq));
                let broken = json!({
                    "chain": b.chain, "chain_seq": b.chain_seq, "reason": b.reason,
                    "audit_seq": row.map(|r| r.seq), "action": row.map(|r| r.action.clone()),
                    "object_id": row.map(|r| r.object_id.clone()),
                });
                return Ok((walk.seen(), Some(broken)));
            }
            Ok(()) if rows.len() < PAGE as usize => return Ok((walk.seen(), None)),
            Ok(()) => {}
        }
    }
}

/// Verifies each chain against its head; `intact` is false when any link is broken.
pub async fn verify(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut broken = Vec::new();
    let mut records = 0;
    for (chain, seq_no, head_hash) in state.store.audit_heads().await? {
        let (seen, bad) = walk_chain(&state, chain, (seq_no, &head_hash)).await?;
        records += seen;
        broken.extend(bad);
    }
    let (headless, unsealed) = state.store.audit_strays().await?;
    for chain in headless {
        broken.push(json!({"chain": chain, "chain_seq": 1, "reason": "the chain's head was removed"}));
    }
    Ok(Json(
        json!({"intact": broken.is_empty(), "records": records, "broken": broken, "unsealed_before_chaining": unsealed}),
    ))
}
