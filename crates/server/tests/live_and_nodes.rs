//! Proves what a merchant's screen and an operator's cluster rely on: the live feed shows
//! each payment and refund once it commits and resumes after `Last-Event-ID`; the scanner
//! endpoint explains what it read; and two server nodes on one PostgreSQL are one system
//! (retries, payment codes, request nonces and the live feed all hold across nodes).

#[macro_use]
mod common;

use common::*;
use saoma_api::signing;
use saoma_client::events::{EventFeed, FeedEvent};
use std::time::Duration;

async fn next_event(feed: &mut EventFeed) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("no event within 10 s")
        .unwrap()
        .expect("feed closed")
}

async fn live_feed_shows_commits_and_resumes(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let mut feed = w.merchant.event_feed(None).await.unwrap();
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("live-1", 800, Some(&code))).await.unwrap();
    let paid = next_event(&mut feed).await;
    assert_eq!(paid.kind, "payment.succeeded");
    assert_eq!(paid.body["data"]["id"], p.id.as_str());
    w.merchant.refund(&p.id, "r-1", 300).await.unwrap();
    let refunded = next_event(&mut feed).await;
    assert_eq!(refunded.kind, "refund.succeeded");
    // A reconnect after the first event gets the refund again, and nothing before it.
    let mut resumed = w.merchant.event_feed(Some(&paid.id)).await.unwrap();
    let again = next_event(&mut resumed).await;
    assert_eq!((again.kind.as_str(), again.id.as_str()), ("refund.succeeded", refunded.id.as_str()));
    // A cursor before every event (0, or a negative one a client made up) replays from the
    // start, the payment included.
    for from_start in ["0", "-1.999999999"] {
        let mut replay = w.merchant.event_feed(Some(from_start)).await.unwrap();
        let mut seen = Vec::new();
        while !seen.contains(&paid.id) && seen.len() < 5 {
            seen.push(next_event(&mut replay).await.id);
        }
        assert!(seen.contains(&paid.id), "a feed from {from_start} replays the payment: {seen:?}");
    }
    // Another merchant's feed sees none of it.
    let other = w.admin.create_merchant(&merchant_req("Other")).await.unwrap();
    w.admin.approve_merchant(&other.id).await.unwrap();
    let k = w.admin.create_key(&other.id, None).await.unwrap();
    let other_client = saoma_client::Client::new(
        &w.url(),
        saoma_client::Credentials::Key { key_id: k.key_id, secret: k.secret },
    );
    let mut other_feed = other_client.event_feed(Some("0")).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(800), other_feed.next()).await.is_err());
}

async fn scanner_endpoint_explains_payloads(db: Db) {
    let w = World::new(db, 0, 0).await;
    let http = reqwest::Client::new();
    let pix = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";
    let r =
        http.post(format!("{}/v1/qr/decode", w.url())).json(&serde_json::json!({"qr_payload": pix})).send();
    let v: serde_json::Value = r.await.unwrap().json().await.unwrap();
    assert_eq!(v["kind"], "emv_mpm");
    assert_eq!((v["59"].as_str(), v["26"]["00"].as_str()), (Some("Fulano de Tal"), Some("br.gov.bcb.pix")));
    let bad = pix.replace("1D3D", "0000");
    let r =
        http.post(format!("{}/v1/qr/decode", w.url())).json(&serde_json::json!({"qr_payload": bad})).send();
    let r = r.await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("CRC"), "{v}");
    // A payment code as a Code 128 barcode; anything but digits is refused.
    let r = http.get(format!("{}/v1/barcode.svg?code=661234567890123456", w.url())).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("<rect x="));
    let r = http.get(format!("{}/v1/barcode.svg?code=12%3Cscript%3E", w.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A missing parameter is a client's mistake answered in the API's error envelope.
    for path in ["/v1/barcode.svg", "/v1/qr.png", "/v1/qr.svg"] {
        let r = http.get(format!("{}{path}", w.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_request", "{path}: {v}");
    }
}

/// Two nodes on one PostgreSQL database.
async fn two_nodes_are_one_system(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = saoma_server::start(config(&w.db), listener).await.unwrap();
    let (till_b, merchant_b) = (w.till.at(&b.url()), w.merchant.at(&b.url()));

    // The live feed on node B shows a payment made through node A, woken by NOTIFY.
    let heard_before = b.state.remote_commits_heard();
    let mut feed_b = merchant_b.event_feed(None).await.unwrap();
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("n-1", 500, Some(&code))).await.unwrap();
    let seen = next_event(&mut feed_b).await;
    assert_eq!(
        (seen.kind.as_str(), seen.body["data"]["id"].as_str()),
        ("payment.succeeded", Some(p.id.as_str()))
    );
    assert!(b.state.remote_commits_heard() > heard_before, "node B heard no NOTIFY from node A");

    // A retry that lands on the other node answers the same payment and charges nothing more.
    let retry = till_b.create_payment(&charge("n-1", 500, Some(&code))).await.unwrap();
    assert_eq!(retry.id, p.id);
    // The code used on A is refused on B.
    let err = till_b.create_payment(&charge("n-2", 100, Some(&code))).await.unwrap_err();
    assert_eq!(err.code(), Some("payment_code_used"));
    assert_eq!(w.balance(0).await, 10_000 - 500);

    // A signed request replayed to node B (same Host, as behind a load balancer) is refused.
    let key = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let body = r#"{"out_trade_no":"n-3","amount":100,"currency":"CNY","subject":"x"}"#;
    let full = format!("{}/v1/payments", w.url());
    let now = chrono::Utc::now().timestamp();
    let h =
        signing::sign_request("POST", &full, Some(body.as_bytes()), &key.key_id, &key.secret, now, "nn-1");
    let send = |base: String| {
        reqwest::Client::new()
            .post(format!("{base}/v1/payments"))
            .header("host", w.server.addr.to_string())
            .header("signature-input", h.signature_input.clone())
            .header("signature", h.signature.clone())
            .header("content-digest", h.content_digest.clone().unwrap())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(send(w.url()).await.unwrap().status().as_u16(), 200);
    let replay = send(b.url()).await.unwrap();
    assert_eq!(replay.status().as_u16(), 401);
    let v: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(v["error"]["code"], "replayed_request");

    // A PIN confirmation made through A wakes a long-poll waiting on B.
    w.admin.top_up(&w.customers[0].0, 500_000, "CNY", "big").await.unwrap();
    let code = wallet.payment_code().await.unwrap().code;
    let big = w.till.create_payment(&charge("n-4", 200_000, Some(&code))).await.unwrap();
    assert_eq!(big.status, "pending");
    let waiting = tokio::spawn({
        let till_b = till_b.clone();
        let id = big.id.clone();
        async move { till_b.payment(&id, 20).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    wallet.confirm(&big.id, PIN).await.unwrap();
    let done = waiting.await.unwrap().unwrap();
    assert_eq!(done.status, "succeeded");
    assert!(started.elapsed() < Duration::from_secs(5));
    b.stop().await.unwrap();
    w.assert_balanced().await;
}

on_both!(live_feed_shows_commits_and_resumes, scanner_endpoint_explains_payloads);
on_postgres!(two_nodes_are_one_system);
