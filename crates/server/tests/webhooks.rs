//! Proves webhooks per Standard Webhooks: signed deliveries a stranger's verifier accepts,
//! retries with the same `webhook-id` until a 2xx, dead-lettering and manual resend, a
//! delivery log with response codes, secret rotation with an overlap, refused targets,
//! each attempt connecting only to the address it vetted (a DNS answer that changes
//! between the check and the connection is never followed), and, with two nodes on
//! PostgreSQL, each webhook sent by exactly one node.

#[macro_use]
mod common;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A merchant's receiver: records every request and answers the next planned status.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    plan: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        self.start_at("127.0.0.1:0").await
    }

    /// Listens at `addr`; answers the URL of its hook.
    async fn start_at(&self, addr: &str) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    me.got.lock().unwrap().push((headers, body));
                    let mut plan = me.plan.lock().unwrap();
                    let code = if plan.is_empty() { 200 } else { plan.remove(0) };
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn got(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

async fn until<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn delivery_status(w: &World, id: &str, status: &str) -> saoma_api::WebhookDelivery {
    for _ in 0..200 {
        let d = w.merchant.webhook_delivery(id).await.unwrap();
        if d.status == status {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} never became {status}");
}

async fn signed_retried_dead_lettered_and_resent(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let rx = Receiver::default();
    let url = rx.start().await;
    let secret = w.merchant.set_webhook(&url).await.unwrap().secret;
    assert!(secret.starts_with("whsec_"));
    // A terminal key may not set or read webhooks.
    assert_eq!(w.till.set_webhook(&url).await.unwrap_err().status(), Some(403));

    // Two failures, then success: three attempts with one webhook-id, signed each time.
    *rx.plan.lock().unwrap() = vec![500, 503];
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("wh-1", 700, Some(&code))).await.unwrap();
    until("three attempts", || rx.got().len() >= 3).await;
    let got = rx.got();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let ids: Vec<_> = got.iter().map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string()).collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "webhook-id must be stable: {ids:?}");
    for (headers, body) in &got {
        verifier.verify(body.as_bytes(), headers).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["data"]["id"].as_str()),
            (Some("payment.succeeded"), Some(p.id.as_str()))
        );
        assert_eq!(v["id"].as_str(), Some(ids[0].as_str()));
    }
    let d = delivery_status(&w, &ids[0], "delivered").await;
    let codes: Vec<_> = d.attempts.unwrap().iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(503), Some(200)]);

    // Always failing: after the last retry it is dead-lettered and listed as such.
    *rx.plan.lock().unwrap() = vec![500; 4];
    w.merchant.refund(&p.id, "wh-r1", 100).await.unwrap();
    until("four more attempts", || rx.got().len() >= 7).await;
    let mut dead_id = None;
    for _ in 0..200 {
        let list = w.merchant.webhook_deliveries(Some("dead")).await.unwrap();
        dead_id = list.data.first().map(|d| d.id.clone());
        if dead_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead_id = dead_id.expect("no dead-lettered delivery");
    let d = w.merchant.webhook_delivery(&dead_id).await.unwrap();
    assert_eq!((d.kind.as_str(), d.attempt_count), ("refund.succeeded", 4));
    assert!(d.attempts.unwrap().iter().all(|a| a.status_code == Some(500)));
    // Resent by hand, it goes through.
    w.merchant.resend_webhook(&dead_id).await.unwrap();
    delivery_status(&w, &dead_id, "delivered").await;

    // Rotation: deliveries carry both signatures during the overlap.
    let new_secret = w.merchant.set_webhook(&url).await.unwrap().secret;
    assert_ne!(new_secret, secret);
    let before = rx.got().len();
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("wh-2", 200, Some(&code))).await.unwrap();
    until("the delivery after rotation", || rx.got().len() > before).await;
    let (headers, body) = rx.got().last().unwrap().clone();
    assert_eq!(headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    standardwebhooks::Webhook::new(&new_secret).unwrap().verify(body.as_bytes(), &headers).unwrap();
    standardwebhooks::Webhook::new(&secret).unwrap().verify(body.as_bytes(), &headers).unwrap();
}

async fn private_and_plain_targets_are_refused(db: Db) {
    // A production-like node: no private targets, https only.
    let (server, admin, m) = production_node(&db, "Strict").await;
    let k = admin.create_key(&m.id, None).await.unwrap();
    let merchant = saoma_client::Client::new(
        &server.url(),
        saoma_client::Credentials::Key { key_id: k.key_id, secret: k.secret },
    );
    for url in [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://[2002:7f00:1::1]/hook",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://shop.example/hook",
    ] {
        let err = merchant.set_webhook(url).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(400), Some("webhook_url_not_allowed")), "{url}");
    }
    let err = merchant.set_webhook("not a url").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_request"));
    // Credentials in the URL would be kept and audited in the clear.
    for url in ["https://user:pw@shop.example/hook", "https://token@shop.example/hook"] {
        let err = merchant.set_webhook(url).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(400), Some("webhook_url_not_allowed")), "{url}");
    }
    server.stop().await.unwrap();
}

/// A resolver that knows one internal name, one public name and no other.
struct Internal;

impl saoma_server::HostLookup for Internal {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Answer<'a> {
        let ip = match host {
            "db.corp.example" => Some("10.0.0.5"),
            "hooks.shop.example" => Some("192.0.32.10"),
            _ => None,
        };
        Box::pin(async move {
            if let Some(ip) = ip {
                Ok(vec![std::net::SocketAddr::new(ip.parse().unwrap(), port)])
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
            }
        })
    }
}

async fn the_endpoint_setting_is_no_dns_oracle(db: Db) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = saoma_server::Config {
        admin_token: Some(ADMIN_TOKEN.into()),
        master_key: Some(TEST_MASTER_KEY.into()),
        webhook_lookup: Some(Arc::new(Internal)),
        ..saoma_server::Config::new(&db.url)
    };
    let server = saoma_server::start(config, listener).await.unwrap();
    let admin =
        saoma_client::Client::new(&server.url(), saoma_client::Credentials::Admin(ADMIN_TOKEN.into()));
    let m = admin.create_merchant(&merchant_req("Oracle")).await.unwrap();
    admin.approve_merchant(&m.id).await.unwrap();
    let k = admin.create_key(&m.id, None).await.unwrap();
    let merchant = saoma_client::Client::new(
        &server.url(),
        saoma_client::Credentials::Key { key_id: k.key_id, secret: k.secret },
    );
    // An internal name that resolves and one that does not get the same answer, so a
    // merchant cannot map the platform's network by setting endpoints.
    let answer = |e: saoma_client::ClientError| e.to_string();
    let internal = answer(merchant.set_webhook("https://db.corp.example/hook").await.unwrap_err());
    let missing = answer(merchant.set_webhook("https://nx.corp.example/hook").await.unwrap_err());
    assert_eq!(internal, missing);
    assert!(!internal.contains("corp.example"), "the answer names the host: {internal}");
    // A token in the query is the merchant's; the audit log keeps the URL without it.
    merchant.set_webhook("https://hooks.shop.example/hook?token=s3cret").await.unwrap();
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/admin/audit?limit=100", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let set = audit["data"].as_array().unwrap().iter().find(|r| r["action"] == "webhook.set").unwrap();
    assert_eq!(set["detail"]["url"], "https://hooks.shop.example/hook?redacted");
    server.stop().await.unwrap();
}

/// A DNS server under an attacker's control: its first answer is `first`, every later
/// one `then` (DNS rebinding).
struct Rebinding {
    first: std::net::IpAddr,
    then: std::net::IpAddr,
    asked: std::sync::atomic::AtomicUsize,
}

type Answer<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>> + Send + 'a>,
>;

impl saoma_server::HostLookup for Rebinding {
    fn lookup<'a>(&'a self, _host: &'a str, port: u16) -> Answer<'a> {
        let n = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let ip = if n == 0 { self.first } else { self.then };
        Box::pin(async move { Ok(vec![std::net::SocketAddr::new(ip, port)]) })
    }
}

async fn each_attempt_connects_where_it_vetted(db: Db) {
    // The vetted answer and the rebound one: the same port on two loopback addresses.
    let vetted = Receiver::default();
    let url = vetted.start_at("127.0.0.1:0").await;
    let port = url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/hook").to_string();
    let rebound = Receiver::default();
    rebound.start_at(&format!("127.0.0.2:{port}")).await;
    let dns = Arc::new(Rebinding {
        first: "127.0.0.1".parse().unwrap(),
        then: "127.0.0.2".parse().unwrap(),
        asked: Default::default(),
    });
    let config = saoma_server::Config { webhook_lookup: Some(dns.clone()), ..config(&db) };
    let w = World::with_config(db, 1, 10_000, config).await;
    w.merchant.set_webhook(&format!("http://hooks.rebind.example:{port}/hook")).await.unwrap();
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("dns-1", 700, Some(&code))).await.unwrap();
    until("the delivery", || !vetted.got().is_empty()).await;
    let id = vetted.got()[0].0["webhook-id"].to_str().unwrap().to_string();
    let d = delivery_status(&w, &id, "delivered").await;
    assert_eq!(d.attempts.unwrap().len(), 1);
    // The attempt asked the name once and went where that answer said; the second answer
    // (an internal address, in an attack) was never asked for, nor connected to.
    assert_eq!(dns.asked.load(std::sync::atomic::Ordering::SeqCst), 1, "one DNS answer per attempt");
    assert!(rebound.got().is_empty(), "the rebound address was reached");
}

async fn two_nodes_send_each_webhook_once(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = saoma_server::start(config(&w.db), listener).await.unwrap();
    let rx = Receiver::default();
    w.merchant.set_webhook(&rx.start().await).await.unwrap();
    let wallet = w.wallet(0).await;
    let till_b = w.till.at(&b.url());
    for i in 0..12 {
        let code = wallet.payment_code().await.unwrap().code;
        let till = if i % 2 == 0 { &w.till } else { &till_b };
        till.create_payment(&charge(&format!("two-{i}"), 100, Some(&code))).await.unwrap();
    }
    until("twelve deliveries", || rx.got().len() >= 12).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // room for a duplicate to show up
    let mut ids: Vec<String> =
        rx.got().iter().map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!((n, ids.len()), (12, 12), "each webhook exactly once");
    b.stop().await.unwrap();
}

/// An endpoint's URL may carry a token in its query: neither the audit record of its
/// setting nor the delivery log (its errors included) shows it. The log of one delivery
/// shows its newest 100 attempts, oldest of those first.
async fn the_delivery_log_keeps_no_token_and_is_bounded(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    // A port nothing listens on: every attempt fails to connect.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let url = format!("http://{closed}/hook?token=s3cret-hook-token");
    w.merchant.set_webhook(&url).await.unwrap();
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("wh-token", 300, Some(&code))).await.unwrap();
    let mut id = None;
    for _ in 0..200 {
        let list = w.merchant.webhook_deliveries(None).await.unwrap();
        if let Some(d) = list.data.into_iter().next().filter(|d| d.last_error.is_some()) {
            id = Some(d.id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("no failed attempt logged");
    let shown = serde_json::to_string(&w.merchant.webhook_delivery(&id).await.unwrap()).unwrap();
    assert!(shown.contains("not delivered"), "the error is shown: {shown}");
    assert!(!shown.contains("s3cret") && !shown.contains("/hook"), "the log shows the URL: {shown}");
    let audited = column(&w.db, "SELECT detail FROM audit_log WHERE action = 'webhook.set'").await;
    assert_eq!(audited.len(), 1);
    assert!(!audited[0].contains("s3cret"), "the audit keeps the token: {audited:?}");

    // A delivery resent many times: only its newest 100 attempts are shown. (Its retries
    // end first, so no new attempt comes between.)
    delivery_status(&w, &id, "dead").await;
    for i in 0..150 {
        exec(
            &w.db,
            &format!(
                "INSERT INTO webhook_attempts (delivery_id, node, attempted_at, status_code, error, duration_ms) \
                 VALUES ('{id}', 'n', '2099-01-01T00:00:00.000Z', 500, 'old-{i:03}', 1)"
            ),
        )
        .await;
    }
    let d = w.merchant.webhook_delivery(&id).await.unwrap();
    let errors: Vec<_> = d.attempts.unwrap().into_iter().map(|a| a.error.unwrap_or_default()).collect();
    assert_eq!(errors.len(), 100);
    assert_eq!((errors[0].as_str(), errors[99].as_str()), ("old-050", "old-149"));
}

on_both!(
    signed_retried_dead_lettered_and_resent,
    private_and_plain_targets_are_refused,
    each_attempt_connects_where_it_vetted,
    the_endpoint_setting_is_no_dns_oracle,
    the_delivery_log_keeps_no_token_and_is_bounded
);
on_postgres!(two_nodes_send_each_webhook_once);
