//! Proves the guards against guessing hold under concurrency and for every kind of key:
//! at most five wrong PINs are weighed however many arrive at once (sign-in and payment
//! PINs alike), a wrong phone answers as a wrong PIN does; bad payment codes block the key
//! or till that shows them and the whole merchant, inside the charge's transaction, and a
//! good code shown while blocked is not spent; a device needs the PIN to enrol, can be
//! listed and removed, and dies with a sign-out everywhere; a pending payment past its
//! time is closed by the sweep exactly once and can no longer be confirmed; a session's
//! lookups of recipients by phone have an hourly budget. On SQLite and PostgreSQL.

mod common;

use common::*;
use saoma_api as api;
use saoma_client::{Client, Credentials};
use serde_json::json;

/// Signs in; the error when refused.
async fn refused_sign_in(w: &World, phone: &str, pin: &str) -> saoma_client::ClientError {
    match Client::new(&w.url(), Credentials::None).wallet_session(phone, pin).await {
        Ok(_) => panic!("signed in with {phone}"),
        Err(e) => e,
    }
}

async fn parallel_wrong_pins_weigh_at_most_five(db: Db) {
    let w = World::new(db, 2, 10_000).await;
    let phone = w.customers[0].1.clone();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (url, phone) = (w.url(), phone.clone());
        tasks.push(tokio::spawn(async move {
            Client::new(&url, Credentials::None)
                .wallet_session(&phone, "000000")
                .await
                .map(|_| ())
                .unwrap_err()
        }));
    }
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let e = t.await.unwrap();
        *answers.entry(e.code().unwrap_or("none").to_string()).or_default() += 1;
    }
    let count = |code: &str| answers.get(code).copied().unwrap_or(0);
    let wrong = count("unauthenticated");
    assert!(wrong <= 4, "at most four wrong PINs answered as wrong before the fifth locks: {answers:?}");
    // The rest were refused unweighed: locked, told to retry while five checks ran, or
    // (on a loaded machine) told the server was busy.
    let unweighed = count("pin_locked") + count("rate_limited") + count("unavailable");
    assert_eq!(wrong + unweighed, 40, "{answers:?}");
    // Wrong PINs one at a time from here: however the flood went, the fifth weighed in all
    // locks PIN use.
    let mut later = 0;
    while refused_sign_in(&w, &phone, "000000").await.code() == Some("unauthenticated") {
        later += 1;
        assert!(wrong + later <= 4, "a fifth wrong PIN was answered as wrong: {answers:?}, then {later}");
    }
    // Locked now: the right PIN is refused too.
    assert_eq!(refused_sign_in(&w, &phone, PIN).await.code(), Some("pin_locked"));

    // The same holds for a PIN given with a transfer.
    let b = w.wallet(1).await;
    let to = w.customers[0].1.clone();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (b, to) = (b.clone(), to.clone());
        tasks.push(tokio::spawn(async move {
            let req = api::TransferRequest {
                to_phone: Some(to),
                qr_payload: None,
                amount: 100,
                currency: "CNY".into(),
                pin: "999999".into(),
                client_ref: format!("g-{i}"),
            };
            b.transfer(&req).await.unwrap_err().code().unwrap_or("none").to_string()
        }));
    }
    let mut wrong = 0;
    for t in tasks {
        match t.await.unwrap().as_str() {
            "invalid_pin" => wrong += 1,
            other => assert!(["pin_locked", "rate_limited", "unavailable"].contains(&other), "{other}"),
        }
    }
    assert!(wrong <= 4, "{wrong} wrong PINs weighed before the lock");
    let balance = b.wallet().await.unwrap().balances[0].available;
    assert_eq!(balance, 10_000, "nothing moved");
}

async fn a_wrong_phone_answers_as_a_wrong_pin(db: Db) {
    let w = World::new(db, 2, 0).await;
    let wrong_pin = refused_sign_in(&w, &w.customers[0].1, "000000").await;
    let wrong_phone = refused_sign_in(&w, "13999999999", PIN).await;
    assert_eq!((wrong_pin.status(), wrong_pin.code()), (Some(401), Some("unauthenticated")));
    assert_eq!((wrong_phone.status(), wrong_phone.code()), (wrong_pin.status(), wrong_pin.code()));
    assert_eq!(wrong_phone.to_string(), wrong_pin.to_string(), "the same words, whichever was wrong");
    // The lockout cannot tell them apart either: the fifth wrong guess locks an unknown
    // phone as it locks a customer's, after the same number of "wrong" answers.
    let run = |phone: String| {
        let w = &w;
        async move {
            let mut answers = Vec::new();
            for _ in 0..7 {
                answers.push(refused_sign_in(w, &phone, "000000").await.to_string());
            }
            answers
        }
    };
    let known = run(w.customers[1].1.clone()).await;
    let unknown = run("13888888888".into()).await;
    assert_eq!(known.iter().filter(|a| a.contains("pin_locked")).count(), 3, "the fifth locks: {known:?}");
    assert_eq!(unknown, known, "an unknown phone locks as a customer's does");
    // Parallel guesses at an unknown phone are let in as few at a time as a customer's.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let url = w.url();
        tasks.push(tokio::spawn(async move {
            match Client::new(&url, Credentials::None).wallet_session("13777777777", "000000").await {
                Ok(_) => "signed_in".to_string(),
                Err(e) => e.code().unwrap_or("none").to_string(),
            }
        }));
    }
    let mut weighed = 0;
    for t in tasks {
        match t.await.unwrap().as_str() {
            "unauthenticated" => weighed += 1,
            other => assert!(["pin_locked", "rate_limited", "unavailable"].contains(&other), "{other}"),
        }
    }
    assert!(weighed <= 4, "{weighed} guesses at an unknown phone answered as wrong before its lock");
}

/// Tight bad-code thresholds: 3 per till or key, 5 per merchant.
async fn tight_codes(w: &World) {
    let mut rules = w.admin.risk_rules().await.unwrap();
    rules.velocity.bad_codes = 3;
    rules.velocity.merchant_bad_codes = 5;
    w.admin.set_risk_rules(&rules).await.unwrap();
}

fn manager(w: &World, k: api::KeyCreated) -> Client {
    Client::new(&w.url(), Credentials::Key { key_id: k.key_id, secret: k.secret })
}

async fn bad_codes_block_any_key_and_the_merchant(db: Db) {
    let w = World::new(db, 2, 10_000).await;
    tight_codes(&w).await;
    const BAD: &str = "289999999999999999";
    // The owner's key is blocked as a till is, and a good code it is shown is not spent.
    for i in 0..3 {
        let e = w.merchant.create_payment(&charge(&format!("o-{i}"), 100, Some(BAD))).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_payment_code"));
    }
    let good = w.wallet(0).await.payment_code().await.unwrap().code;
    let blocked = w.merchant.create_payment(&charge("o-good", 100, Some(&good))).await.unwrap_err();
    assert_eq!((blocked.status(), blocked.code()), (Some(402), Some("risk_declined")));
    let refused = w.merchant.payment_by_trade_no("o-good", 0).await.unwrap();
    let kept = w.admin.risk_decisions(None, Some(&refused.id)).await.unwrap();
    assert_eq!(kept.data[0].rule, "key_bad_codes");
    assert_eq!(w.till.create_payment(&charge("t-good", 100, Some(&good))).await.unwrap().status, "succeeded");

    // Fresh keys do not multiply the budget: the merchant's count is shared by all of them.
    for i in 0..2 {
        let k = manager(&w, w.admin.create_key(&w.merchant_id, None).await.unwrap());
        let e = k.create_payment(&charge(&format!("m-{i}"), 100, Some(BAD))).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_payment_code"));
    }
    let fresh = manager(&w, w.admin.create_key(&w.merchant_id, None).await.unwrap());
    let good = w.wallet(1).await.payment_code().await.unwrap().code;
    let e = fresh.create_payment(&charge("f-good", 100, Some(&good))).await.unwrap_err();
    assert_eq!(e.code(), Some("risk_declined"), "five bad codes over the merchant's keys block them all");
    assert_eq!(w.balance(1).await, 10_000, "the good code moved nothing");
    w.assert_balanced().await;
}

async fn a_parallel_burst_of_bad_codes_is_counted_and_blocks(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    tight_codes(&w).await;
    let k = manager(&w, w.admin.create_key(&w.merchant_id, None).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let code = format!("2{:017}", 100_000_000 + i);
            k.create_payment(&charge(&format!("burst-{i}"), 100, Some(&code))).await.unwrap_err()
        }));
    }
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let e = t.await.unwrap();
        if e.code().is_none() {
            eprintln!("burst error: {e:?}");
        }
        *answers.entry(e.code().unwrap_or("none").to_string()).or_default() += 1;
    }
    eprintln!("burst answers: {answers:?}");
    assert!(
        answers
            .keys()
            .all(|c| ["invalid_payment_code", "risk_declined", "concurrent_request"].contains(&c.as_str())),
        "a burst gets declines, never an error: {answers:?}"
    );
    let bad_answers = answers.get("invalid_payment_code").copied().unwrap_or(0);
    assert!(bad_answers <= 3, "no more bad codes weighed than the threshold: {answers:?}");
    let good = w.wallet(0).await.payment_code().await.unwrap().code;
    let e = k.create_payment(&charge("after-burst", 100, Some(&good))).await.unwrap_err();
    assert_eq!(e.code(), Some("risk_declined"), "the burst's count blocks the key");
    // The refusal did not spend the code; the merchant's other till is not blocked.
    assert_eq!(
        w.till.create_payment(&charge("elsewhere", 100, Some(&good))).await.unwrap().status,
        "succeeded"
    );
    w.assert_balanced().await;
}

async fn devices_need_the_pin_and_die_with_sign_out_everywhere(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let bare: Result<api::DeviceEnrolled, _> = wallet.call("POST", "/v1/wallet/devices", None::<&()>).await;
    assert_eq!(bare.unwrap_err().code(), Some("pin_required"));
    let wrong = wallet.enroll_device("000000").await.unwrap_err();
    assert_eq!(wrong.code(), Some("invalid_pin"));
    let a = wallet.enroll_device(PIN).await.unwrap();
    let b = wallet.enroll_device(PIN).await.unwrap();
    let listed: Vec<String> = wallet.devices().await.unwrap().data.into_iter().map(|d| d.id).collect();
    assert_eq!(listed, vec![a.device_id.clone(), b.device_id.clone()]);
    // Removing one: gone from the list, and another customer cannot remove the other.
    wallet.remove_device(&a.device_id).await.unwrap();
    assert_eq!(wallet.remove_device(&a.device_id).await.unwrap_err().code(), Some("not_found"));
    assert_eq!(wallet.devices().await.unwrap().data.len(), 1);
    // Sign-out everywhere ends the sessions and revokes the rest.
    let ended = w.admin.revoke_sessions(&w.customers[0].0, "phone reported stolen").await.unwrap();
    assert_eq!(ended.devices_revoked, 1);
    assert_eq!(wallet.devices().await.unwrap_err().code(), Some("unauthenticated"));
    assert!(w.wallet(0).await.devices().await.unwrap().data.is_empty());
    // The revoked device's offline codes are refused, and nothing is charged.
    let code = b.code_at(chrono::Utc::now().timestamp()).unwrap();
    let e = w.till.create_payment(&charge("off-revoked", 500, Some(&code))).await.unwrap_err();
    assert_eq!(e.code(), Some("invalid_payment_code"));
    assert_eq!(w.balance(0).await, 10_000);
}

async fn devices_are_capped_and_listed_a_page_at_a_time(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let mut enrolled = Vec::new();
    for _ in 0..10 {
        enrolled.push(wallet.enroll_device(PIN).await.unwrap().device_id);
    }
    let over = wallet.enroll_device(PIN).await.unwrap_err();
    assert_eq!((over.status(), over.code()), (Some(409), Some("too_many_devices")));
    // Pages of four: every device once, in enrolment order, then no next cursor.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page = wallet.devices_page(4, cursor.as_deref()).await.unwrap();
        assert!(page.data.len() <= 4);
        seen.extend(page.data.into_iter().map(|d| d.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, enrolled);
    // Removing one makes room for one more.
    wallet.remove_device(&enrolled[0]).await.unwrap();
    wallet.enroll_device(PIN).await.unwrap();
    let bad = wallet.devices_page(4, Some("not-a-cursor")).await.unwrap_err();
    assert_eq!((bad.status(), bad.code()), (Some(400), Some("invalid_request")));
}

async fn overdue_payments_close_once_and_cannot_be_confirmed(db: Db) {
    let sweeping = |db: &Db| saoma_server::Config {
        expiry_sweep_every: std::time::Duration::from_millis(100),
        ..config(db)
    };
    let config_a = sweeping(&db);
    let config_b = sweeping(&db);
    let w = World::with_config(db, 1, 1_000_000, config_a).await;
    // On PostgreSQL a second node on the same database sweeps too (an SQLite file is
    // one node's: a second writer there only waits on the first's lock).
    let _node_b = match w.db.is_postgres() {
        true => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            Some(saoma_server::start(config_b, listener).await.unwrap())
        }
        false => None,
    };
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let big = api::CreatePaymentRequest { expires_in: Some(1), ..charge("late-pin", 150_000, Some(&code)) };
    let waiting = w.till.create_payment(&big).await.unwrap();
    assert_eq!(waiting.next_action.as_deref(), Some("customer_confirm"));
    let dynamic = api::CreatePaymentRequest { expires_in: Some(1), ..charge("late-qr", 900, None) };
    let dynamic = w.till.create_payment(&dynamic).await.unwrap();
    // Nobody reads them: the sweep alone must close them, each once across both nodes.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    for p in [&waiting, &dynamic] {
        let status = column(&w.db, &format!("SELECT status FROM payments WHERE id = '{}'", p.id)).await;
        assert_eq!(status, vec!["closed".to_string()], "{} closed by the sweep", p.out_trade_no);
        let events = column(
            &w.db,
            &format!("SELECT id FROM events WHERE kind = 'payment.closed' AND data LIKE '%{}%'", p.id),
        )
        .await;
        assert_eq!(events.len(), 1, "one payment.closed event for {}", p.out_trade_no);
    }
    let late = wallet.confirm(&waiting.id, PIN).await.unwrap_err();
    assert_eq!(late.code(), Some("payment_not_pending"));
    let pay = api::QrPayRequest {
        qr_payload: dynamic.qr_payload.clone().unwrap(),
        amount: None,
        pin: None,
        client_ref: None,
    };
    assert_eq!(wallet.pay_qr(&pay).await.unwrap_err().code(), Some("payment_not_pending"));
    assert_eq!(w.balance(0).await, 1_000_000);
    w.assert_balanced().await;
}

/// A signed-in session cannot check which phones have wallets: looking up recipients by
/// phone, to resolve or to transfer to, has an hourly budget per customer, counted on the
/// database so every node shares it; the next lookup is told when to retry. Another
/// customer's budget is untouched.
async fn recipient_lookups_have_an_hourly_budget(db: Db) {
    let w = World::new(db, 2, 10_000).await;
    let wallet = w.wallet(0).await;
    let resolve = |phone: String| {
        let wallet = wallet.clone();
        async move {
            wallet
                .call::<serde_json::Value>(
                    "POST",
                    "/v1/wallet/recipients/resolve",
                    Some(&json!({"to_phone": phone})),
                )
                .await
        }
    };
    // The budget, spent in parallel: found and unknown phones alike count.
    let mut tasks = Vec::new();
    for i in 0..saoma_server::RECIPIENT_LOOKUPS_PER_HOUR {
        let phone = if i % 2 == 0 { w.customers[1].1.clone() } else { format!("1000000{i:04}") };
        tasks.push(tokio::spawn(resolve(phone)));
    }
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(answer.is_ok() || answer.as_ref().unwrap_err().status() == Some(404), "{answer:?}");
    }
    let spent = resolve(w.customers[1].1.clone()).await.unwrap_err();
    assert_eq!((spent.status(), spent.code()), (Some(429), Some("rate_limited")));
    // A transfer by phone draws on the same budget, after its PIN; nothing moves.
    let transfer = api::TransferRequest {
        to_phone: Some(w.customers[1].1.clone()),
        qr_payload: None,
        amount: 100,
        currency: "CNY".into(),
        pin: PIN.into(),
        client_ref: "t-over-budget".into(),
    };
    assert_eq!(wallet.transfer(&transfer).await.unwrap_err().code(), Some("rate_limited"));
    assert_eq!(w.balance(0).await, 10_000);
    // The other customer looks up freely.
    let other = w.wallet(1).await;
    let to = json!({"to_phone": w.customers[0].1});
    other.call::<serde_json::Value>("POST", "/v1/wallet/recipients/resolve", Some(&to)).await.unwrap();
}

on_both!(
    parallel_wrong_pins_weigh_at_most_five,
    a_wrong_phone_answers_as_a_wrong_pin,
    bad_codes_block_any_key_and_the_merchant,
    a_parallel_burst_of_bad_codes_is_counted_and_blocks,
    devices_need_the_pin_and_die_with_sign_out_everywhere,
    devices_are_capped_and_listed_a_page_at_a_time,
    overdue_payments_close_once_and_cannot_be_confirmed,
    nul_is_a_clients_mistake,
    recipient_lookups_have_an_hourly_budget,
);

/// NUL in a path, a query or a JSON string is a client's mistake (400), never a 500
/// (PostgreSQL refuses NUL in text).
async fn nul_is_a_clients_mistake(db: Db) {
    let w = World::new(db, 1, 0).await;
    let http = reqwest::Client::new();
    let session = http
        .post(format!("{}/v1/wallet/session", w.url()))
        .header("content-type", "application/json")
        .body(r#"{"phone": "1\u0000", "pin": "123456"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 400);
    let path = http.get(format!("{}/v1/qr.svg?payload=%00", w.url())).send().await.unwrap();
    assert_eq!(path.status(), 400);
    let e = w.till.payment("pay_%00", 0).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_request")));
}
