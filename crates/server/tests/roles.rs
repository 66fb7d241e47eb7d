//! Roles and ownership: operator roles (admin, risk officer, support, auditor), merchant
//! roles (owner, manager, cashier's till), key rotation and revocation (a rotated-out
//! owner key manages nothing), and for each kind
//! of resource, proof that another merchant or customer can neither read nor act on it.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;
use saoma_client::{Client, Credentials};

fn operator(w: &World, created: &api::OperatorCreated) -> Client {
    Client::new(&w.url(), Credentials::Admin(created.token.clone()))
}

fn key_client(w: &World, k: &api::KeyCreated) -> Client {
    Client::new(&w.url(), Credentials::Key { key_id: k.key_id.clone(), secret: k.secret.clone() })
}

fn status<T: std::fmt::Debug>(r: Result<T, saoma_client::ClientError>) -> u16 {
    r.unwrap_err().status().unwrap()
}

async fn operator_roles_are_enforced(db: Db) {
    let w = World::new(db, 1, 1000).await;
    let c = w.customers[0].0.clone();
    let support = operator(&w, &w.admin.create_operator("Lin (support)", "support").await.unwrap());
    let risk_op = w.admin.create_operator("Wu (risk)", "risk_officer").await.unwrap();
    let risk = operator(&w, &risk_op);
    let auditor = operator(&w, &w.admin.create_operator("Zhao (audit)", "auditor").await.unwrap());
    let bad = w.admin.create_operator("Nobody", "superuser").await.unwrap_err();
    assert_eq!(bad.code(), Some("invalid_request"));

    // Support reads, and does nothing else.
    assert_eq!(support.customer(&c).await.unwrap().id, c);
    support.risk_decisions(Some(&c), None).await.unwrap();
    assert_eq!(status(support.create_merchant(&merchant_req("X")).await), 403);
    assert_eq!(status(support.freeze(&c, "looks odd").await), 403);
    assert_eq!(status(support.top_up(&c, 100, "CNY", "s-1").await), 403);
    assert_eq!(status(support.verify_audit().await), 403);
    assert_eq!(status(support.create_operator("Me", "admin").await), 403);

    // The risk officer freezes and sets rules; onboarding and money are not theirs.
    assert!(risk.freeze(&c, "chargeback pattern").await.unwrap().frozen);
    assert!(!risk.unfreeze(&c, "cleared").await.unwrap().frozen);
    // Who, what, from where, before and after.
    let kept =
        column(&w.db, "SELECT actor || ' ' || detail FROM audit_log WHERE action = 'wallet.freeze'").await;
    let (actor, detail) = kept[0].split_once(' ').unwrap();
    assert_eq!(actor, risk_op.operator.id);
    let detail: serde_json::Value = serde_json::from_str(detail).unwrap();
    assert_eq!(
        (detail["from"].as_str(), detail["after"]["frozen"].as_bool()),
        (Some("127.0.0.1"), Some(true))
    );
    let rules = risk.risk_rules().await.unwrap();
    risk.set_risk_rules(&rules).await.unwrap();
    risk.suspend_merchant(&w.merchant_id).await.unwrap();
    assert_eq!(status(risk.approve_merchant(&w.merchant_id).await), 403, "approving is onboarding's");
    risk.reinstate_merchant(&w.merchant_id, "investigation closed").await.unwrap();
    assert_eq!(status(risk.create_customer("13811112222", "R", PIN).await), 403);
    assert_eq!(status(risk.trial_balance().await), 403);

    // The auditor checks the books and the chain, and changes nothing.
    assert!(auditor.trial_balance().await.unwrap().balanced);
    assert!(auditor.verify_audit().await.unwrap().intact);
    assert_eq!(status(auditor.freeze(&c, "x").await), 403);
    assert_eq!(status(auditor.set_risk_rules(&rules).await), 403);

    // A revoked operator is locked out at once.
    let gone = w.admin.create_operator("Temp", "support").await.unwrap();
    let temp = operator(&w, &gone);
    temp.customer(&c).await.unwrap();
    w.admin.revoke_operator(&gone.operator.id).await.unwrap();
    assert_eq!(status(temp.customer(&c).await), 401);
}

async fn merchant_roles_and_key_lifecycle(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let manager = key_client(&w, &w.merchant.own_create_key("manager", None).await.unwrap());
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("m-1", 1_000, Some(&code))).await.unwrap();
    // The till (cashier) cannot refund; the manager can, and reads the day's bill.
    assert_eq!(status(w.till.refund(&p.id, "m-r0", 100).await), 403);
    manager.refund(&p.id, "m-r1", 100).await.unwrap();
    // The money move is audited: who (the manager's key), from where, before and after.
    let kept =
        column(&w.db, "SELECT actor || ' ' || detail FROM audit_log WHERE action = 'refund.create'").await;
    let (actor, detail) = kept[0].split_once(' ').unwrap();
    assert_eq!(Some(actor), manager.key_id());
    let detail: serde_json::Value = serde_json::from_str(detail).unwrap();
    assert_eq!(
        (
            detail["from"].as_str(),
            detail["before"]["refunded_amount"].as_i64(),
            detail["after"]["refunded_amount"].as_i64()
        ),
        (Some("127.0.0.1"), Some(0), Some(100))
    );
    manager.bill(&chrono::Utc::now().format("%Y-%m-%d").to_string()).await.unwrap();
    // Settings and keys are the owner's.
    assert_eq!(status(manager.set_webhook("http://127.0.0.1:9/hook").await), 403);
    assert_eq!(status(manager.own_create_key("manager", None).await), 403);
    assert_eq!(status(w.till.own_keys().await), 403);
    // Read raw: the typed list could not show a secret even if the server sent one.
    let raw: serde_json::Value = w.merchant.call("GET", "/v1/merchant/keys", None::<&()>).await.unwrap();
    assert!(raw["data"].as_array().unwrap().iter().all(|k| k.get("secret").is_none()), "no secret listed");
    let keys = w.merchant.own_keys().await.unwrap();

    // Rotation with a grace period: both keys work; without one, the old key stops.
    let till_key = keys.data.iter().find(|k| k.role == "terminal").unwrap();
    let till_key_id = till_key.key_id.clone();
    let graced = key_client(&w, &w.merchant.own_rotate_key(&till_key_id, 3600).await.unwrap());
    w.till.payment(&p.id, 0).await.unwrap();
    graced.payment(&p.id, 0).await.unwrap();
    let next = w.merchant.own_rotate_key(&graced_key_id(&graced), 0).await.unwrap();
    assert_eq!(status(graced.payment(&p.id, 0).await), 401, "rotated out with no grace");
    key_client(&w, &next).payment(&p.id, 0).await.unwrap();

    // Revocation is immediate, by the owner or the operator.
    let manager_id = manager_key_id(&w).await;
    w.merchant.own_revoke_key(&manager_id).await.unwrap();
    assert_eq!(status(manager.payment(&p.id, 0).await), 401);
    w.admin.admin_revoke_key(&next.key_id).await.unwrap();
    assert_eq!(status(key_client(&w, &next).payment(&p.id, 0).await), 401);
}

fn graced_key_id(c: &Client) -> String {
    c.key_id().unwrap().to_string()
}

async fn manager_key_id(w: &World) -> String {
    let keys = w.merchant.own_keys().await.unwrap();
    let m = keys.data.into_iter().find(|k| k.role == "manager" && k.revoked_at.is_none());
    m.unwrap().key_id
}

/// For each kind of resource: another merchant gets 404 (it does not learn the object
/// exists), another terminal gets 403, another customer gets 404.
async fn nobody_reaches_anothers_objects(db: Db) {
    let w = World::new(db, 2, 10_000).await;
    let rival_m = w.admin.create_merchant(&merchant_req("Rival")).await.unwrap();
    w.admin.approve_merchant(&rival_m.id).await.unwrap();
    let rival = key_client(&w, &w.admin.create_key(&rival_m.id, None).await.unwrap());
    w.merchant.set_webhook("http://127.0.0.1:9/hook").await.unwrap();
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("o-1", 2_000, Some(&code))).await.unwrap();
    let refund = w.merchant.refund(&p.id, "o-r1", 100).await.unwrap();

    // Payments, refunds, receipts.
    assert_eq!(status(rival.payment(&p.id, 0).await), 404);
    assert_eq!(status(rival.payment_by_trade_no("o-1", 0).await), 404);
    assert_eq!(status(rival.cancel(&p.id).await), 404);
    assert_eq!(status(rival.refund(&p.id, "steal", 100).await), 404);
    assert_eq!(status(rival.receipt(&p.id).await), 404);
    assert_eq!(status(w.other_till.receipt(&p.id).await), 403);
    assert_eq!(w.merchant.refund(&p.id, "o-r1", 100).await.unwrap().id, refund.id, "idempotent, not stolen");
    // Listings and statements show only one's own.
    let listed = rival.list_payments().await.unwrap();
    assert!(listed.data.iter().all(|x| x.merchant_id == rival_m.id));
    let bill = rival.bill(&chrono::Utc::now().format("%Y-%m-%d").to_string()).await.unwrap();
    assert!(!bill.contains(&p.id), "another merchant's payment in a statement");
    // Webhook deliveries.
    let deliveries = w.merchant.webhook_deliveries(None).await.unwrap();
    let d = deliveries.data[0].id.clone();
    assert_eq!(status(rival.webhook_delivery(&d).await), 404);
    assert_eq!(status(rival.resend_webhook(&d).await), 404);
    // Keys and terminals.
    let till_key = w.till.key_id().unwrap().to_string();
    assert_eq!(status(rival.own_revoke_key(&till_key).await), 404);
    assert_eq!(status(rival.own_rotate_key(&till_key, 0).await), 404);
    let other_terminal = w.admin.create_terminal(&w.merchant_id, "Till 3").await.unwrap();
    assert_eq!(status(rival.own_create_key("terminal", Some(&other_terminal.id)).await), 400);
    w.till.payment(&p.id, 0).await.unwrap();

    // Customers: another's pending payment, history.
    let code = w.wallet(1).await.payment_code().await.unwrap().code;
    let pending = w.till.create_payment(&charge("o-pin2", 100_001, Some(&code))).await.unwrap();
    assert_eq!(pending.status, "pending");
    assert_eq!(status(w.wallet(0).await.confirm(&pending.id, PIN).await), 404);
    let history = w.wallet(0).await.transactions().await.unwrap();
    assert!(history.data.iter().all(|t| t.id != pending.id));
}

/// An owner key rotated out keeps paying and reading through its grace, so tills can
/// switch over, but may no longer manage keys or settings: it could otherwise mint a key
/// that never expires, rotate itself again, or revoke the key that replaced it.
async fn a_rotated_out_owner_key_manages_nothing(db: Db) {
    let w = World::new(db, 1, 1000).await;
    let owner = key_client(&w, &w.merchant.own_create_key("merchant", None).await.unwrap());
    let owner_id = owner.key_id().unwrap().to_string();
    let successor = w.merchant.own_rotate_key(&owner_id, 3600).await.unwrap();
    assert_eq!(status(owner.own_create_key("merchant", None).await), 403);
    assert_eq!(status(owner.own_rotate_key(&owner_id, 604_800).await), 403);
    assert_eq!(status(owner.own_revoke_key(&successor.key_id).await), 403);
    assert_eq!(status(owner.set_webhook("http://127.0.0.1:9/hook").await), 403);
    owner.webhook_deliveries(None).await.unwrap();
    // The successor manages keys as the owner did.
    let next = key_client(&w, &successor);
    next.own_create_key("terminal", Some(&w.till_id)).await.unwrap();
    next.own_revoke_key(&owner_id).await.unwrap();
    assert_eq!(status(owner.webhook_deliveries(None).await), 401);
}

on_both!(
    operator_roles_are_enforced,
    merchant_roles_and_key_lifecycle,
    nobody_reaches_anothers_objects,
    a_rotated_out_owner_key_manages_nothing,
);
