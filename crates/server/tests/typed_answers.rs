//! Proves the answers typed in saoma-api are exactly what the server sends: each raw
//! answer decodes into its saoma-api type and encodes back to the same JSON (no field lost,
//! none added, the same nulls, the same absent fields), for the operator's books and lists,
//! the merchant's report and application, the scanner's decoder, the JWKS, the risk rules
//! and the screens' sign-ins. The typed client reads the same answers, and its query
//! strings, built from saoma-api's query types, reach the server as typed: a value with
//! `&`, `=` or a space is one value, not a second parameter.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;
use saoma_client::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Decodes `raw` as `T` and checks that encoding it again gives `raw` back.
fn same<T: DeserializeOwned + Serialize>(what: &str, raw: &Value) -> T {
    let typed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{raw:#}"));
    let again = serde_json::to_value(&typed).unwrap();
    assert_eq!(&again, raw, "{what}: the type does not say what the server sends");
    typed
}

async fn get<T: DeserializeOwned + Serialize>(c: &Client, path: &str) -> T {
    let raw: Value = c.call("GET", path, None::<&()>).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    same(path, &raw)
}

async fn send<T: DeserializeOwned + Serialize>(c: &Client, method: &str, path: &str, body: Value) -> T {
    let raw: Value =
        c.call(method, path, Some(&body)).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    same(path, &raw)
}

/// A POST as a browser makes it, with no credentials but the body: the answer's JSON.
async fn sign_in(w: &World, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new().post(format!("{}{path}", w.url())).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn the_operators_books_and_lists(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("ta-1", 1_250, Some(&code))).await.unwrap();
    w.merchant.refund(&p.id, "ta-r1", 250).await.unwrap();
    let today = chrono::Utc::now().date_naive().to_string();

    let taken: api::CheckpointTaken = send(&w.admin, "POST", "/v1/admin/audit/checkpoints", json!({})).await;
    assert!(taken.written);
    let verified: api::AuditVerification = get(&w.admin, "/v1/admin/audit/verify").await;
    assert!(verified.intact, "{verified:?}");
    assert_eq!(verified.checkpoint.map(|c| c.seq), Some(taken.seq));

    let run: api::SettlementRun =
        send(&w.admin, "POST", "/v1/admin/settlements", json!({"date": today})).await;
    let mine = run.settlements.iter().find(|s| s.merchant_id == w.merchant_id).unwrap();
    assert_eq!(mine.outcome, api::SettlementOutcome::Paid);
    assert!(mine.entry_id.is_some());
    let again: api::SettlementRun =
        send(&w.admin, "POST", "/v1/admin/settlements", json!({"date": today})).await;
    assert!(again.settlements.iter().all(|s| s.outcome == api::SettlementOutcome::AlreadySettled));
    let report: api::SettlementReport = get(&w.admin, &format!("/v1/admin/settlements/{today}")).await;
    assert_eq!(report.settlements.len(), run.settlements.len());
    let rec: api::Reconciliation = get(&w.admin, &format!("/v1/admin/reconciliation/{today}")).await;
    assert!(rec.balanced, "{rec:?}");

    let merchants: api::Page<api::MerchantListed> = get(&w.admin, "/v1/admin/merchants").await;
    assert!(merchants.data.iter().any(|m| m.merchant.id == w.merchant_id && m.application.is_none()));
    let customers: api::Page<api::CustomerListed> = get(&w.admin, "/v1/admin/customers").await;
    assert_eq!(customers.data[0].balances[0].available, 10_000 - 1_250 + 250);
    let audit: api::AuditPage = get(&w.admin, "/v1/admin/audit?limit=3").await;
    assert_eq!(audit.next_cursor, Some(audit.data[2].seq));
    assert_eq!(w.admin.audit_log(3).await.unwrap().data, audit.data, "the typed client reads the same");
    let rules: api::RiskRules = get(&w.admin, "/v1/admin/risk/rules").await;
    let raw_rules = serde_json::to_value(&rules).unwrap();
    let saved: api::RiskRules = send(&w.admin, "PUT", "/v1/admin/risk/rules", raw_rules).await;
    assert_eq!(saved.version, rules.version + 1);

    // The typed client reads the same.
    let phone = &w.customers[0].1;
    assert_eq!(w.admin.customers_page(phone).await.unwrap().data[0].customer.phone, *phone);
    assert!(
        w.admin
            .merchants_page(Some("active"))
            .await
            .unwrap()
            .data
            .iter()
            .all(|m| m.merchant.status == "active")
    );

    // A difference and a broken chain, typed too.
    exec(&w.db, &format!("UPDATE payments SET fee = fee + 1 WHERE id = '{}'", p.id)).await;
    let rec: api::Reconciliation = get(&w.admin, &format!("/v1/admin/reconciliation/{today}")).await;
    assert!(
        !rec.balanced && rec.differences.iter().any(|d| d.merchant_id.as_deref() == Some(&w.merchant_id))
    );
    exec(&w.db, &format!("DELETE FROM audit_log WHERE object_id = '{}'", p.id)).await;
    let broken: api::AuditVerification = get(&w.admin, "/v1/admin/audit/verify").await;
    assert!(!broken.intact && !broken.broken.is_empty(), "{broken:?}");
}

async fn the_merchants_report_and_application(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("ta-2", 800, Some(&code))).await.unwrap();
    let report: api::SalesReport = get(&w.merchant, "/v1/merchant/reports/sales?days=3").await;
    assert_eq!((report.days.len(), report.report.totals.amount), (3, 800));
    assert_eq!(w.merchant.sales_report(3).await.unwrap().report, report.report);

    let m = w.admin.create_merchant(&merchant_req("Applicant")).await.unwrap();
    let k = w.admin.create_key(&m.id, None).await.unwrap();
    let owner = Client::new(&w.url(), saoma_client::Credentials::Key { key_id: k.key_id, secret: k.secret });
    let application = json!({"legal_name": "Applicant Ltd.", "licence_number": "91330100MA2K",
        "owner_name": "Chen Jing", "owner_id_number": "330102199001011234",
        "documents": [{"kind": "business_licence", "sha256": "a".repeat(64)}]});
    let submitted: api::ApplicationView = send(&owner, "PUT", "/v1/merchant/application", application).await;
    assert_eq!((submitted.status.as_str(), submitted.reason.as_deref()), ("submitted", None));
    let own: api::ApplicationView = get(&owner, "/v1/merchant/application").await;
    assert_eq!(own, submitted);
    w.admin.request_info(&m.id, "a clearer scan").await.unwrap();
    let asked: api::ApplicationView =
        get(&w.admin, &format!("/v1/admin/merchants/{}/application", m.id)).await;
    assert_eq!(asked.decided_by.as_deref(), Some("admin"));
    let queue: api::Page<api::MerchantListed> =
        get(&w.admin, "/v1/admin/merchants?status=pending_review").await;
    let listed = queue.data.iter().find(|x| x.merchant.id == m.id).unwrap();
    assert_eq!(listed.application.as_ref().map(|a| a.status.as_str()), Some("more_info"));
}

async fn the_public_answers_and_sign_ins(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let jwks: api::Jwks = get(&w.admin, "/.well-known/jwks.json").await;
    assert!(jwks.keys.iter().all(|k| (k.kty.as_str(), k.key_use.as_str()) == ("OKP", "sig")));

    let sticker = w.merchant.merchant_qr().await.unwrap().qr_payload;
    let pix = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    for payload in [sticker.as_str(), pix, code.as_str(), "upi://pay?pa=shop@bank&pn=Shop&am=10.00"] {
        let d: api::QrDecoded = send(&w.admin, "POST", "/v1/qr/decode", json!({"qr_payload": payload})).await;
        assert_eq!(d.saoma_signature.is_some(), payload == sticker, "{d:?}");
    }
    assert_eq!(w.admin.decode_qr(&sticker).await.unwrap().saoma_signature.as_deref(), Some("valid"));

    let k = w.admin.create_key(&w.merchant_id, Some(&w.till_id)).await.unwrap();
    let till: api::SignedIn = same(
        "till",
        &sign_in(&w, "/v1/web/merchant/session", json!({"key_id": k.key_id, "secret": k.secret})).await,
    );
    assert_eq!(
        (till.role.as_deref(), till.terminal_id.as_deref()),
        (Some("terminal"), Some(w.till_id.as_str()))
    );
    let phone = &w.customers[0].1;
    let wallet: api::SignedIn =
        same("wallet", &sign_in(&w, "/v1/web/wallet/session", json!({"phone": phone, "pin": PIN})).await);
    assert_eq!((wallet.role, wallet.terminal_id), (None, None));
    let console: api::SignedIn =
        same("console", &sign_in(&w, "/v1/web/operator/session", json!({"token": ADMIN_TOKEN})).await);
    assert_eq!(console.role.as_deref(), Some("admin"));
}

async fn the_clients_queries_arrive_as_typed(db: Db) {
    let w = World::new(db, 1, 1_000).await;
    // Sent as it was typed, `x&wait=abc` would be the order `x` and a second, broken
    // `wait` (400); encoded, it is one order number that names no payment (404).
    let odd = w.till.payment_by_trade_no("x&wait=abc", 0).await.unwrap_err();
    assert_eq!((odd.status(), odd.code()), (Some(404), Some("not_found")), "{odd}");
    // A search of several words finds by name; the words arrive as one value.
    let found = w.admin.customers_page("no one & nobody=1").await.unwrap();
    assert!(found.data.is_empty());
}

on_both!(
    the_clients_queries_arrive_as_typed,
    the_operators_books_and_lists,
    the_merchants_report_and_application,
    the_public_answers_and_sign_ins
);
