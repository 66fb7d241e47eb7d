//! Proves the money trail of a business day: the CSV statement has a line per payment
//! and refund and totals equal to the ledger; settlement pays the net out once per day
//! and carries a negative balance forward; reconciliation finds nothing when all agree
//! and names a discrepancy planted straight into the database.

#[macro_use]
mod common;

use common::*;
use saoma_api::SettlementOutcome;

fn cents(s: &str) -> i64 {
    let (units, frac) = s.split_once('.').unwrap();
    let sign = if units.starts_with('-') { -1 } else { 1 };
    sign * (units.trim_start_matches('-').parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap())
}

async fn statement_settlement_and_reconciliation(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let mut paid = Vec::new();
    for (i, amount) in [1250, 999, 30_000].into_iter().enumerate() {
        let code = wallet.payment_code().await.unwrap().code;
        paid.push(w.till.create_payment(&charge(&format!("st-{i}"), amount, Some(&code))).await.unwrap());
    }
    let r0 = w.merchant.refund(&paid[0].id, "st-r0", 250).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let date = today.to_string();

    // The statement: header, 3 payments, 1 refund, a total equal to the sum of the lines.
    let csv = w.merchant.bill(&date).await.unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0].join(","), "type,id,reference,payment_id,time,currency,amount,fee,net");
    let body: Vec<_> = rows[1..rows.len() - 1].to_vec();
    assert_eq!(body.iter().filter(|r| r[0] == "payment").count(), 3);
    assert_eq!(body.iter().filter(|r| r[0] == "refund").count(), 1);
    let net: i64 = body.iter().map(|r| cents(r[8])).sum();
    let total = rows.last().unwrap();
    assert_eq!((total[0], total[2], cents(total[8])), ("total", "4", net));
    let fees: i64 = paid.iter().map(|p| p.fee).sum::<i64>() - r0.fee_returned;
    assert_eq!(net, 1250 + 999 + 30_000 - 250 - fees);
    // Only the merchant's own key reads it; dates are checked.
    assert_eq!(w.till.bill(&date).await.unwrap_err().status(), Some(403));
    assert_eq!(w.merchant.bill("2026-02-30").await.unwrap_err().code(), Some("invalid_request"));

    // Settlement pays that net out once.
    for name in ["Second shop", "Third shop"] {
        let m = w.admin.create_merchant(&merchant_req(name)).await.unwrap();
        w.admin.approve_merchant(&m.id).await.unwrap();
    }
    let s = w.admin.settle(&date).await.unwrap();
    // The day's report is read a page at a time: every settlement once, then no cursor.
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let url = format!("{}/v1/admin/settlements/{date}?limit=2{cursor}", w.url());
        let page: saoma_api::SettlementReport = reqwest::Client::new()
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = &page.settlements;
        assert!(rows.len() <= 2, "{page:?}");
        seen.extend(rows.iter().map(|r| r.settlement_id.clone()));
        match page.next_cursor.as_deref() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let mut settled: Vec<String> = s.settlements.iter().map(|r| r.settlement_id.clone()).collect();
    settled.sort();
    assert!(settled.len() >= 3, "{s:?}");
    assert_eq!(seen, settled);
    let mine = s.settlements.iter().find(|x| x.merchant_id == w.merchant_id).unwrap().clone();
    assert_eq!((mine.outcome, mine.amount), (SettlementOutcome::Paid, net));
    let again = w.admin.settle(&date).await.unwrap();
    let again = again.settlements.iter().find(|x| x.merchant_id == w.merchant_id).unwrap();
    assert_eq!(again.settlement_id, mine.settlement_id);
    assert_eq!(again.outcome, SettlementOutcome::AlreadySettled);

    // A refund after settlement leaves the merchant owing; the next day carries it.
    let big = &paid[2];
    let r = w.merchant.refund(&big.id, "st-r2", 30_000).await.unwrap();
    let tomorrow = (today + chrono::Days::new(1)).to_string();
    let next = w.admin.settle(&tomorrow).await.unwrap();
    let next = next.settlements.iter().find(|x| x.merchant_id == w.merchant_id).unwrap();
    assert_eq!(next.outcome, SettlementOutcome::Carried);
    assert_eq!(next.carried, -(30_000 - r.fee_returned));
    assert_eq!(next.amount, 0);
    // Settling an earlier day after a later one is refused.
    let yesterday = (today - chrono::Days::new(1)).to_string();
    assert_eq!(w.admin.settle(&yesterday).await.unwrap_err().code(), Some("settlement_out_of_order"));

    // Everything agrees.
    let rec = w.admin.reconcile(&date).await.unwrap();
    assert!(rec.balanced, "{rec:?}");
    assert_eq!((rec.checked.payments, rec.checked.refunds), (3, 2));
    w.assert_balanced().await;

    // A fee changed behind the ledger's back is found, and named.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&w.db.url).await.unwrap();
    sqlx::query("UPDATE payments SET fee = fee + 1 WHERE id = $1")
        .bind(&paid[1].id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let rec = w.admin.reconcile(&date).await.unwrap();
    assert!(!rec.balanced);
    let whats: Vec<&str> = rec.differences.iter().map(|d| d.what.as_str()).collect();
    assert!(whats.iter().any(|w| w.contains(&paid[1].id)), "{whats:?}");
    assert!(whats.iter().any(|w| w.contains("statement net")), "{whats:?}");
}

async fn open_days_are_not_settled(db: Db) {
    let (server, admin, _merchant) = production_node(&db, "Late Shop").await;
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(admin.settle(&today).await.unwrap_err().code(), Some("business_day_open"));
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let s = admin.settle(&yesterday).await.unwrap();
    assert_eq!(s.settlements[0].outcome, SettlementOutcome::Carried);
    assert_eq!(s.settlements[0].amount, 0);
    let mut bad = merchant_req("Nowhere");
    bad.timezone = Some("Mars/Olympus".into());
    assert_eq!(admin.create_merchant(&bad).await.unwrap_err().code(), Some("invalid_request"));
    server.stop().await.unwrap();
}

/// Several operators (or an operator and the daily job) settling one day at the same
/// moment: one settlement is made, and every caller is answered with it, none with an
/// error (the losers meet the unique key on merchant and day, at their insert).
async fn a_day_settled_at_once_by_several_is_settled_once(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("race-1", 5000, Some(&code))).await.unwrap();
    let date = chrono::Utc::now().date_naive().to_string();
    let answers = futures::future::join_all((0..4).map(|_| w.admin.settle(&date))).await;
    let mut ids = Vec::new();
    for answer in answers {
        let answer = answer.expect("every caller is answered");
        let mine = answer.settlements.iter().find(|x| x.merchant_id == w.merchant_id).unwrap();
        ids.push(mine.settlement_id.clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one settlement for the day: {ids:?}");
    let report = w.admin.settle(&date).await.unwrap();
    let mine = report.settlements.iter().find(|x| x.merchant_id == w.merchant_id).unwrap();
    assert_eq!(mine.outcome, SettlementOutcome::AlreadySettled);
}

on_both!(
    statement_settlement_and_reconciliation,
    open_days_are_not_settled,
    a_day_settled_at_once_by_several_is_settled_once
);
