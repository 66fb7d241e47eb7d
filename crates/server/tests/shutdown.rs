//! Proves a graceful stop under load (what `saoma serve` does on SIGTERM): requests in
//! flight finish, every payment that was answered "succeeded" is in the database after a
//! restart, every debit has its payment, and the ledger balances.

#[macro_use]
mod common;

use common::*;
use futures::future::join_all;

async fn stop_under_load_loses_nothing(db: Db) {
    let w = World::new(db, 8, 100_000).await;
    let mut wallets = Vec::new();
    for i in 0..8 {
        wallets.push(w.wallet(i).await);
    }
    // Codes first, so the load below is payments only.
    let mut codes = Vec::new();
    for round in 0..5 {
        for (i, wallet) in wallets.iter().enumerate() {
            codes.push((format!("sd-{round}-{i}"), i, wallet.payment_code().await.unwrap().code));
        }
    }
    let till = w.till.clone();
    let store = w.server.state.store.clone();
    let before = store.last_event_cursor().await.unwrap();
    let load = tokio::spawn(async move {
        join_all(codes.into_iter().map(|(otn, i, code)| {
            let till = till.clone();
            async move { (otn.clone(), i, till.create_payment(&charge(&otn, 100, Some(&code))).await) }
        }))
        .await
    });
    // Stop as soon as the first payment of the load has committed, with the rest in flight.
    for _ in 0..1000 {
        if store.last_event_cursor().await.unwrap() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let World { server, db, admin, till, customers, .. } = w;
    server.stop().await.unwrap();
    let results = load.await.unwrap();

    // A new node on the same database.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = saoma_server::start(config(&db), listener).await.unwrap();
    let (till, admin) = (till.at(&again.url()), admin.at(&again.url()));
    let mut paid_per_customer = [0i64; 8];
    let mut answered = 0;
    for (otn, i, result) in &results {
        let stored = till.payment_by_trade_no(otn, 0).await;
        match result {
            Ok(p) => {
                answered += 1;
                assert_eq!(p.status, "succeeded");
                assert_eq!(stored.unwrap().id, p.id, "an answered payment was lost");
            }
            Err(e) => assert!(e.status().is_none() || e.status() == Some(503), "unexpected answer {e:?}"),
        }
        // Whatever the client heard, the database decides what was charged.
        if let Ok(p) = till.payment_by_trade_no(otn, 0).await
            && p.status == "succeeded"
        {
            paid_per_customer[*i] += p.amount;
        }
    }
    assert!(answered > 0, "the stop came before any payment");
    for (i, (_, phone)) in customers.iter().enumerate() {
        let wallet = saoma_client::Client::new(&again.url(), saoma_client::Credentials::None)
            .wallet_session(phone, PIN)
            .await
            .unwrap();
        let balance = wallet.wallet().await.unwrap().balances[0].available;
        assert_eq!(balance, 100_000 - paid_per_customer[i], "customer {i}: a debit without its payment");
    }
    assert!(admin.trial_balance().await.unwrap().balanced);
    again.stop().await.unwrap();
}

on_both!(stop_under_load_loses_nothing);
