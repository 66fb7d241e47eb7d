//! Proves that every list pages to its end: a customer's history, a merchant's payments,
//! webhook deliveries, risk decisions, operators and API keys each answer `?limit=`
//! (1-100) and `?cursor=` with a `next_cursor` on every page but the last, so all of a
//! long list can be read; each row comes once, in a stable order, even when rows share a
//! timestamp and while new rows arrive between pages; and a bad limit or a cursor the
//! list did not hand out is a 400 that names it.

#[macro_use]
mod common;

use common::*;
use saoma_client::{Client, ClientError};
use serde_json::Value;

/// Reads a list to its end, `limit` at a time, and answers the ids in the order served.
/// `between` runs after each page, to add rows while the client pages.
async fn walk(
    c: &Client,
    path: &str,
    id_field: &str,
    limit: usize,
    mut between: impl AsyncFnMut(),
) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page: Value = c.call("GET", &url, None::<&()>).await.unwrap();
        let data = page["data"].as_array().unwrap_or_else(|| panic!("{path}: no data in {page}"));
        assert!(data.len() <= limit, "{path}: a page longer than its limit");
        ids.extend(data.iter().map(|row| row[id_field].as_str().unwrap().to_string()));
        match page.get("next_cursor") {
            Some(Value::String(next)) => {
                assert_eq!(data.len(), limit, "{path}: a short page that is not the last");
                cursor = Some(next.clone());
            }
            Some(Value::Null) => return ids,
            other => panic!("{path}: next_cursor is {other:?}"),
        }
        between().await;
    }
    panic!("{path}: more than 100 pages");
}

/// Asserts that `seen` holds each of `expected` exactly once and no id twice.
fn each_once(what: &str, seen: &[String], expected: &[String]) {
    let mut sorted = seen.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "{what}: an item was served twice: {seen:?}");
    for id in expected {
        assert!(seen.contains(id), "{what}: {id} was never served");
    }
}

fn refused(r: Result<Value, ClientError>) -> (Option<u16>, Option<String>, Option<String>) {
    match r.unwrap_err() {
        ClientError::Api { status, error } => (Some(status), Some(error.code), error.param),
        other => panic!("not an API error: {other:?}"),
    }
}

async fn pay(w: &World, wallet: &Client, otn: &str) -> String {
    let code = wallet.payment_code().await.unwrap().code;
    w.till.create_payment(&charge(otn, 100, Some(&code))).await.unwrap().id
}

async fn wallet_history_reads_to_the_end_while_payments_arrive(db: Db) {
    let w = World::new(db, 1, 1_000_000).await;
    let wallet = w.wallet(0).await;
    let mut paid = Vec::new();
    for i in 0..11 {
        paid.push(pay(&w, &wallet, &format!("h-{i}")).await);
    }
    // Several payments in one millisecond: the order must still be total.
    exec(&w.db, "UPDATE payments SET paid_at = '2026-01-01T00:00:00.000Z' WHERE out_trade_no LIKE 'h-%'")
        .await;
    let first: Value = wallet.call("GET", "/v1/wallet/transactions?limit=4", None::<&()>).await.unwrap();
    assert!(
        first["next_cursor"].is_string(),
        "a history longer than a page must say where it goes on: {first}"
    );

    let mut arriving = 0;
    let seen = walk(&wallet, "/v1/wallet/transactions", "id", 4, async || {
        arriving += 1;
        pay(&w, &wallet, &format!("late-{arriving}")).await;
    })
    .await;
    // The top-up and every payment made before the walk, each once; the rows that arrived
    // during it sort before the first page, where the next first page shows them.
    let mut expected = paid.clone();
    expected.push(w.wallet(0).await.transactions().await.unwrap().data.last().unwrap().id.clone());
    each_once("history", &seen, &expected);
    assert_eq!(seen.len(), 12, "the top-up and 11 payments: {seen:?}");
    let again = walk(&wallet, "/v1/wallet/transactions", "id", 100, async || {}).await;
    assert_eq!(again.len(), 12 + arriving, "the arrivals are there on a fresh read");

    // Bad paging input is a clear 400 that changes nothing.
    for (query, param) in
        [("limit=0", "limit"), ("limit=101", "limit"), ("cursor=nonsense", "cursor"), ("limit=ten", "")]
    {
        let r = wallet.call::<Value>("GET", &format!("/v1/wallet/transactions?{query}"), None::<&()>).await;
        let (status, code, p) = refused(r);
        assert_eq!((status, code.as_deref()), (Some(400), Some("invalid_request")), "{query}");
        if !param.is_empty() {
            assert_eq!(p.as_deref(), Some(param), "{query}");
        }
    }
    // A cursor of another list is not taken for this one's.
    let payments: Value = w.merchant.call("GET", "/v1/payments?limit=1", None::<&()>).await.unwrap();
    let foreign = payments["next_cursor"].as_str().unwrap();
    let r =
        wallet.call::<Value>("GET", &format!("/v1/wallet/transactions?cursor={foreign}"), None::<&()>).await;
    assert_eq!(refused(r).2.as_deref(), Some("cursor"));
}

async fn every_list_reads_to_the_end(db: Db) {
    let w = World::new(db, 1, 1_000_000).await;
    let wallet = w.wallet(0).await;
    // Deliveries pile up against a receiver that is never there.
    w.merchant.set_webhook("http://127.0.0.1:9/hook").await.unwrap();
    let mut payments = Vec::new();
    for i in 0..7 {
        payments.push(pay(&w, &wallet, &format!("l-{i}")).await);
    }
    // Declines leave risk decisions.
    for i in 0..5 {
        let r = w.till.create_payment(&charge(&format!("bad-{i}"), 100, Some("661234567890123456"))).await;
        assert_eq!(r.unwrap_err().code(), Some("invalid_payment_code"));
    }
    for i in 0..4 {
        w.admin.create_operator(&format!("Op {i}"), "support").await.unwrap();
    }
    for _ in 0..4 {
        w.merchant.own_create_key("manager", None).await.unwrap();
    }

    // Payments, newest first, while new ones arrive: each old one once, no duplicates.
    let seen = walk(&w.merchant, "/v1/payments", "id", 3, async || {
        pay(&w, &wallet, &ulid::Ulid::new().to_string()).await;
    })
    .await;
    each_once("payments", &seen, &payments);

    let deliveries = walk(&w.merchant, "/v1/merchant/webhook/deliveries", "id", 2, async || {}).await;
    assert!(deliveries.len() >= 7, "a delivery per payment event: {deliveries:?}");
    each_once("deliveries", &deliveries, &[]);

    let decisions = walk(&w.admin, "/v1/admin/risk/decisions", "id", 2, async || {}).await;
    assert_eq!(decisions.len(), 5, "{decisions:?}");
    each_once("decisions", &decisions, &[]);

    // Oldest-first lists reach what is added while they are read.
    let mut added = Vec::new();
    let operators = walk(&w.admin, "/v1/admin/operators", "id", 2, async || {
        let o = w.admin.create_operator("Late", "auditor").await.unwrap();
        added.push(o.operator.id);
    })
    .await;
    each_once("operators", &operators, &added);
    assert_eq!(operators.len(), 4 + added.len());

    let keys = walk(&w.merchant, "/v1/merchant/keys", "key_id", 2, async || {}).await;
    assert_eq!(keys.len(), 3 + 4, "the world's three keys and four managers: {keys:?}");
    each_once("keys", &keys, &[]);
    let admin_keys =
        walk(&w.admin, &format!("/v1/admin/merchants/{}/keys", w.merchant_id), "key_id", 3, async || {})
            .await;
    assert_eq!(admin_keys, keys, "the operator's list is the owner's, in the same order");

    for path in ["/v1/payments", "/v1/merchant/webhook/deliveries", "/v1/merchant/keys"] {
        let r = w.merchant.call::<Value>("GET", &format!("{path}?cursor=abc"), None::<&()>).await;
        assert_eq!(refused(r), (Some(400), Some("invalid_request".into()), Some("cursor".into())), "{path}");
        let r = w.merchant.call::<Value>("GET", &format!("{path}?limit=101"), None::<&()>).await;
        assert_eq!(refused(r).2.as_deref(), Some("limit"), "{path}");
    }
    for path in ["/v1/admin/risk/decisions", "/v1/admin/operators"] {
        let r = w.admin.call::<Value>("GET", &format!("{path}?cursor=abc"), None::<&()>).await;
        assert_eq!(refused(r).2.as_deref(), Some("cursor"), "{path}");
    }
}

on_both!(wallet_history_reads_to_the_end_while_payments_arrive, every_list_reads_to_the_end);
