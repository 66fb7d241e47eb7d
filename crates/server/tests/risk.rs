//! The risk engine end to end: tier limits (per payment, rolling 24 h), the PIN threshold,
//! frozen wallets, velocity per wallet and per terminal, the bad-code block, operator
//! rules, and every decline kept with the rule that fired.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;
use serde_json::{Value, json};

/// Rules with a small tier and tight velocity, so a test reaches every threshold quickly.
async fn tight_rules(w: &World, wallet_per_minute: i64) -> api::RiskRules {
    let mut rules = w.admin.risk_rules().await.unwrap();
    rules.tiers.insert("small".into(), api::TierLimits { per_payment: 100, daily: 250 });
    rules.velocity.wallet_per_minute = wallet_per_minute;
    rules.velocity.bad_codes = 3;
    w.admin.set_risk_rules(&rules).await.unwrap()
}

async fn pay(w: &World, i: usize, otn: &str, amount: i64) -> Result<api::Payment, saoma_client::ClientError> {
    let code = w.wallet(i).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge(otn, amount, Some(&code))).await
}

async fn decisions_of(w: &World, subject: &str) -> Vec<api::RiskDecision> {
    w.admin.risk_decisions(Some(subject), None).await.unwrap().data
}

async fn tier_limits_per_payment_and_daily(db: Db) {
    let w = World::new(db, 2, 1_000_000).await;
    let before = w.admin.risk_rules().await.unwrap().version;
    let rules = tight_rules(&w, 20).await;
    assert_eq!(rules.version, before + 1, "every change gets a new version");
    let (me, _) = w.customers[0].clone();
    assert_eq!(w.admin.set_tier(&me, "small").await.unwrap().tier, "small");
    let limits = w.wallet(0).await.wallet().await.unwrap().limits;
    assert_eq!(
        (limits.tier.as_str(), limits.per_payment_major_units, limits.daily_major_units),
        ("small", 100, 250)
    );

    let over = pay(&w, 0, "r-over", 10_001).await.unwrap_err();
    assert_eq!((over.status(), over.code()), (Some(402), Some("limit_exceeded")));
    assert_eq!(pay(&w, 0, "r-1", 10_000).await.unwrap().status, "succeeded");
    assert_eq!(pay(&w, 0, "r-2", 10_000).await.unwrap().status, "succeeded");
    // ¥200 paid today: ¥60 more would make ¥260, over the ¥250 daily limit.
    let daily = pay(&w, 0, "r-3", 6_000).await.unwrap_err();
    assert_eq!(daily.code(), Some("limit_exceeded"));
    let failed = w.till.payment_by_trade_no("r-3", 0).await.unwrap();
    assert_eq!((failed.status.as_str(), failed.failure_code.as_deref()), ("failed", Some("limit_exceeded")));
    // Transfers count toward the same daily limit.
    let t = api::TransferRequest {
        to_phone: Some(w.customers[1].1.clone()),
        qr_payload: None,
        amount: 6_000,
        currency: "CNY".into(),
        pin: PIN.into(),
        client_ref: "t-daily".into(),
    };
    assert_eq!(w.wallet(0).await.transfer(&t).await.unwrap_err().code(), Some("limit_exceeded"));
    assert_eq!(pay(&w, 0, "r-4", 5_000).await.unwrap().status, "succeeded", "¥250 exactly is allowed");
    assert_eq!(w.balance(0).await, 1_000_000 - 25_000, "declines moved no money");

    let kept = decisions_of(&w, &me).await;
    let rules_fired: Vec<&str> = kept.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(rules_fired, ["daily_limit", "daily_limit", "per_payment_limit"]);
    let by_payment = w.admin.risk_decisions(None, Some(&failed.id)).await.unwrap();
    let d = &by_payment.data[0];
    assert_eq!((d.observed, d.threshold), (26_000, 25_000));
    assert_eq!(d.rules_version, rules.version);
    // The other customer, standard tier, is not touched by the small tier's limits.
    assert_eq!(pay(&w, 1, "r-other", 10_001).await.unwrap().status, "succeeded");
    w.assert_balanced().await;
}

async fn frozen_wallet_cannot_pay_but_can_receive(db: Db) {
    let w = World::new(db, 2, 100_000).await;
    let (me, _) = w.customers[0].clone();
    let blank = w.admin.freeze(&me, " ").await.unwrap_err();
    assert_eq!(blank.code(), Some("invalid_request"), "a freeze needs a reason");
    assert!(w.admin.freeze(&me, "card reported stolen").await.unwrap().frozen);
    assert!(w.wallet(0).await.wallet().await.unwrap().frozen);

    assert_eq!(pay(&w, 0, "f-1", 100).await.unwrap_err().code(), Some("wallet_frozen"));
    let qr = w.merchant.merchant_qr().await.unwrap().qr_payload;
    let by_qr = api::QrPayRequest { qr_payload: qr.clone(), amount: Some(100), pin: None, client_ref: None };
    assert_eq!(w.wallet(0).await.pay_qr(&by_qr).await.unwrap_err().code(), Some("wallet_frozen"));
    let to = |phone: &str, r: &str| api::TransferRequest {
        to_phone: Some(phone.into()),
        qr_payload: None,
        amount: 500,
        currency: "CNY".into(),
        pin: PIN.into(),
        client_ref: r.into(),
    };
    let out = w.wallet(0).await.transfer(&to(&w.customers[1].1, "out")).await.unwrap_err();
    assert_eq!(out.code(), Some("wallet_frozen"));
    // Money may still come in.
    w.wallet(1).await.transfer(&to(&w.customers[0].1, "in")).await.unwrap();
    assert_eq!(w.balance(0).await, 100_500);

    assert!(!w.admin.unfreeze(&me, "customer identified at branch").await.unwrap().frozen);
    // Sessions end at once: by the customer (sign out), and everywhere by the operator.
    let (one, two) = (w.wallet(0).await, w.wallet(0).await);
    one.end_session().await.unwrap();
    assert_eq!(one.wallet().await.unwrap_err().status(), Some(401));
    two.wallet().await.unwrap();
    let ended = w.admin.revoke_sessions(&me, "phone reported stolen").await.unwrap();
    assert!(ended.sessions_ended >= 1);
    assert_eq!(two.wallet().await.unwrap_err().status(), Some(401));
    assert_eq!(pay(&w, 0, "f-2", 100).await.unwrap().status, "succeeded");
    let audit = w.admin.verify_audit().await.unwrap();
    assert!(audit.intact, "{audit:?}");
    w.assert_balanced().await;
}

async fn velocity_and_the_bad_code_block(db: Db) {
    let w = World::new(db, 2, 100_000).await;
    tight_rules(&w, 4).await;
    for i in 0..4 {
        assert_eq!(pay(&w, 0, &format!("v-{i}"), 100).await.unwrap().status, "succeeded");
    }
    let fast = pay(&w, 0, "v-5", 100).await.unwrap_err();
    assert_eq!(fast.code(), Some("risk_declined"));
    assert_eq!(decisions_of(&w, &w.customers[0].0).await[0].rule, "wallet_velocity");
    assert_eq!(pay(&w, 1, "v-other", 100).await.unwrap().status, "succeeded", "one wallet's pace is its own");

    // A till that keeps presenting bad codes is blocked; the customer's good code is not
    // spent by the refusal and works at the next till.
    for i in 0..3 {
        let bad = w.till.create_payment(&charge(&format!("b-{i}"), 100, Some("289999999999999999"))).await;
        assert_eq!(bad.unwrap_err().code(), Some("invalid_payment_code"));
    }
    let good = w.wallet(1).await.payment_code().await.unwrap().code;
    let blocked = w.till.create_payment(&charge("b-good", 100, Some(&good))).await.unwrap_err();
    assert_eq!(blocked.code(), Some("risk_declined"));
    assert_eq!(decisions_of(&w, &w.till_id).await[0].rule, "terminal_bad_codes");
    assert_eq!(
        w.other_till.create_payment(&charge("b-next", 100, Some(&good))).await.unwrap().status,
        "succeeded"
    );
    w.assert_balanced().await;
}

/// A till over its velocity is refused before its code is even looked at: the good code
/// it was shown stays unspent, and the bad codes it is shown count no guess (with a
/// merchant threshold of three, three counted guesses would block the merchant's other
/// till too).
async fn a_till_over_its_velocity_spends_no_code_and_counts_no_guess(db: Db) {
    let w = World::new(db, 2, 100_000).await;
    let mut rules = tight_rules(&w, 100).await;
    (rules.velocity.terminal_per_minute, rules.velocity.merchant_bad_codes) = (2, 3);
    w.admin.set_risk_rules(&rules).await.unwrap();
    for (i, otn) in [(0, "t-1"), (1, "t-2")] {
        assert_eq!(pay(&w, i, otn, 100).await.unwrap().status, "succeeded");
    }
    let good = w.wallet(0).await.payment_code().await.unwrap().code;
    let refused = w.till.create_payment(&charge("t-3", 100, Some(&good))).await.unwrap_err();
    assert_eq!(refused.code(), Some("risk_declined"));
    assert_eq!(decisions_of(&w, &w.till_id).await[0].rule, "terminal_velocity");
    for i in 0..3 {
        let bad =
            w.till.create_payment(&charge(&format!("t-bad-{i}"), 100, Some("289999999999999999"))).await;
        assert_eq!(bad.unwrap_err().code(), Some("risk_declined"), "refused as too fast, not as a bad code");
    }
    assert!(decisions_of(&w, &w.till_id).await.iter().all(|d| d.rule == "terminal_velocity"));
    let paid = w.other_till.create_payment(&charge("t-other", 100, Some(&good))).await.unwrap();
    assert_eq!(paid.status, "succeeded", "the code was not spent, and the merchant is not blocked");
    w.assert_balanced().await;
}

async fn velocity_off_for_load_tests(db: Db) {
    let config = saoma_server::Config { risk_velocity: false, ..config(&db) };
    let w = World::with_config(db, 1, 100_000, config).await;
    let mut rules = tight_rules(&w, 4).await;
    for i in 0..6 {
        assert_eq!(pay(&w, 0, &format!("o-{i}"), 100).await.unwrap().status, "succeeded");
    }
    // Limits and the PIN threshold stay on.
    rules.password_free = 1;
    w.admin.set_risk_rules(&rules).await.unwrap();
    assert_eq!(
        pay(&w, 0, "o-pin", 200).await.unwrap().status,
        "pending",
        "¥2 is over a ¥1 password-free limit"
    );
}

async fn operator_rules_are_checked(db: Db) {
    let w = World::new(db, 0, 0).await;
    let mut rules = w.admin.risk_rules().await.unwrap();
    rules.tiers.insert("standard".into(), api::TierLimits { per_payment: 500, daily: 100 });
    let e = w.admin.set_risk_rules(&rules).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_request")));
    // Not a rule set at all: the typed client cannot send it, so it goes raw.
    let unknown = w
        .admin
        .call::<Value>("PUT", "/v1/admin/risk/rules", Some(&json!({"password_free": 1})))
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(400));
    let c = w.admin.create_customer("13800009999", "New", PIN).await.unwrap();
    assert_eq!(w.admin.set_tier(&c.id, "platinum").await.unwrap_err().code(), Some("invalid_request"));
    assert_eq!(w.admin.customer(&c.id).await.unwrap().tier, "standard");
}

on_both!(
    tier_limits_per_payment_and_daily,
    frozen_wallet_cannot_pay_but_can_receive,
    velocity_and_the_bad_code_block,
    a_till_over_its_velocity_spends_no_code_and_counts_no_guess,
    velocity_off_for_load_tests,
    operator_rules_are_checked,
);
