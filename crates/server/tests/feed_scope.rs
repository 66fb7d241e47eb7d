//! Proves that a live feed is the key's that opened it: a terminal key's feed carries its
//! own till's payments and refunds only, live and from the beginning of history, while
//! the merchant's key sees them all; and the feed of a key that is revoked, or rotated
//! out with no grace, ends (on PostgreSQL also when that happens through another node).

#[macro_use]
mod common;

use common::*;
use saoma_client::events::{EventFeed, FeedEvent};
use saoma_client::{Client, Credentials};
use std::time::Duration;

async fn next_event(feed: &mut EventFeed) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("no event within 10 s")
        .unwrap()
        .expect("feed closed")
}

/// Waits for the server to close the feed; anything it still sends first is a failure.
async fn ends(feed: &mut EventFeed, what: &str) {
    match tokio::time::timeout(Duration::from_secs(10), feed.next()).await {
        Ok(Ok(None)) | Ok(Err(_)) => {}
        Ok(Ok(Some(e))) => panic!("{what}: the feed went on with {e:?}"),
        Err(_) => panic!("{what}: the feed is still open after 10 s"),
    }
}

async fn pay(till: &Client, wallet: &Client, otn: &str) -> String {
    let code = wallet.payment_code().await.unwrap().code;
    till.create_payment(&charge(otn, 1_000, Some(&code))).await.unwrap().id
}

/// The payment an event is about, and the till it was made on.
fn about(e: &FeedEvent) -> (String, String) {
    let data = &e.body["data"];
    let p = if e.kind == "refund.succeeded" { &data["payment"] } else { data };
    (p["id"].as_str().unwrap().to_string(), p["terminal_id"].as_str().unwrap_or("").to_string())
}

/// Reads `feed` up to the event about `last`, and answers what each event was about.
async fn until_payment(feed: &mut EventFeed, last: &str) -> Vec<(String, String, String)> {
    let mut seen = Vec::new();
    loop {
        let e = next_event(feed).await;
        let (payment, till) = about(&e);
        let done = payment == last;
        seen.push((e.kind, payment, till));
        if done {
            return seen;
        }
    }
}

async fn a_tills_feed_carries_its_own_till_only(db: Db) {
    let w = World::new(db, 1, 1_000_000).await;
    let wallet = w.wallet(0).await;
    let early_other = pay(&w.other_till, &wallet, "e-1").await;
    let early_own = pay(&w.till, &wallet, "e-2").await;
    let mut own = w.till.event_feed(None).await.unwrap();
    let mut all = w.merchant.event_feed(None).await.unwrap();

    let other = pay(&w.other_till, &wallet, "f-1").await;
    let by_merchant = pay(&w.merchant, &wallet, "f-2").await;
    let mine = pay(&w.till, &wallet, "f-3").await;
    w.merchant.refund(&other, "f-r1", 100).await.unwrap();
    w.merchant.refund(&mine, "f-r2", 100).await.unwrap();
    let closed = w.other_till.create_payment(&charge("f-4", 100, None)).await.unwrap().id;
    w.other_till.cancel(&closed).await.unwrap();
    let last = pay(&w.till, &wallet, "f-5").await;

    // The till sees its sale, the refund of it and its next sale, and nothing between.
    let seen = until_payment(&mut own, &last).await;
    let kinds: Vec<(&str, &str)> = seen.iter().map(|(k, p, _)| (k.as_str(), p.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("payment.succeeded", mine.as_str()),
            ("refund.succeeded", mine.as_str()),
            ("payment.succeeded", last.as_str())
        ]
    );
    // The merchant's key sees every till's.
    let everything: Vec<String> = until_payment(&mut all, &last).await.into_iter().map(|e| e.1).collect();
    for p in [&other, &by_merchant, &mine, &closed, &last] {
        assert!(everything.contains(p), "the merchant's feed misses {p}");
    }

    // Replayed from the beginning of history, the till's feed is still its own.
    let mut history = w.till.event_feed(Some("0")).await.unwrap();
    let seen = until_payment(&mut history, &last).await;
    assert!(seen.iter().all(|(_, _, till)| till == &w.till_id), "another till's event: {seen:?}");
    let payments: Vec<&str> = seen.iter().map(|(_, p, _)| p.as_str()).collect();
    assert!(payments.contains(&early_own.as_str()) && !payments.contains(&early_other.as_str()));
}

async fn new_till_key(w: &World) -> saoma_api::KeyCreated {
    w.merchant.own_create_key("terminal", Some(&w.till_id)).await.unwrap()
}

fn key_client(w: &World, k: saoma_api::KeyCreated) -> Client {
    Client::new(&w.url(), Credentials::Key { key_id: k.key_id, secret: k.secret })
}

async fn a_revoked_or_rotated_out_keys_feed_ends(db: Db) {
    let w = World::new(db, 1, 1_000_000).await;
    let wallet = w.wallet(0).await;

    // Revoked by the owner: its open feed ends.
    let revoked = key_client(&w, new_till_key(&w).await);
    let mut feed = revoked.event_feed(None).await.unwrap();
    w.merchant.own_revoke_key(revoked.key_id().unwrap()).await.unwrap();
    ends(&mut feed, "revoked key").await;

    // Rotated out with no grace: its feed ends; the new key's goes on.
    let old = key_client(&w, new_till_key(&w).await);
    let mut old_feed = old.event_feed(None).await.unwrap();
    let new = key_client(&w, w.merchant.own_rotate_key(old.key_id().unwrap(), 0).await.unwrap());
    ends(&mut old_feed, "rotated-out key").await;
    let mut new_feed = new.event_feed(None).await.unwrap();
    // Rotated with a grace period, the old key's feed goes on until the grace ends.
    let graced = key_client(&w, new_till_key(&w).await);
    let mut graced_feed = graced.event_feed(None).await.unwrap();
    w.merchant.own_rotate_key(graced.key_id().unwrap(), 3600).await.unwrap();
    let p = pay(&w.till, &wallet, "g-1").await;
    assert_eq!(about(&next_event(&mut new_feed).await).0, p);
    assert_eq!(about(&next_event(&mut graced_feed).await).0, p);

    if w.db.is_postgres() {
        // Revoked through another node, the feed this node serves ends too.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = saoma_server::start(config(&w.db), listener).await.unwrap();
        let mut on_b = new.at(&b.url()).event_feed(None).await.unwrap();
        w.admin.admin_revoke_key(new.key_id().unwrap()).await.unwrap();
        ends(&mut on_b, "key revoked on the other node").await;
        b.stop().await.unwrap();
    }
}

on_both!(a_tills_feed_carries_its_own_till_only, a_revoked_or_rotated_out_keys_feed_ends);
