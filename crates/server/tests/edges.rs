//! The edges: rate limits per key and per address (429 `rate_limited` with
//! `Retry-After`), a replayed signed request refused before it spends its key's budget,
//! security headers on every answer, cross-site requests refused, `/metrics` only for an
//! operator or on its own address, and no secret in the configuration's `Debug`.

#[macro_use]
mod common;

use common::*;

async fn rate_limited_per_key(db: Db) {
    let config = saoma_server::Config { rate_limit_per_key: 5, ..config(&db) };
    let w = World::with_config(db, 0, 0, config).await;
    let p = w.till.create_payment(&charge("rl-1", 100, None)).await.unwrap();
    let mut limited = 0;
    for _ in 0..30 {
        match w.till.payment(&p.id, 0).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!((e.status(), e.code()), (Some(429), Some("rate_limited")));
                limited += 1;
            }
        }
    }
    assert!(limited > 0, "30 requests at once passed a limit of 5/s with a burst of 10");
    // The budget is the key's: the merchant's own key is not slowed by its till.
    w.merchant.payment(&p.id, 0).await.unwrap();
}

async fn rate_limited_per_address(db: Db) {
    let config = saoma_server::Config { rate_limit_per_ip: 5, ..config(&db) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = saoma_server::start(config, listener).await.unwrap();
    let http = reqwest::Client::new();
    let mut refused = None;
    for _ in 0..40 {
        let r = http.get(format!("{}/healthz", server.url())).send().await.unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("40 requests at once passed a limit of 5/s");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    server.stop().await.unwrap();
}

async fn security_headers_and_cross_site_requests(db: Db) {
    let w = World::new(db, 1, 0).await;
    let http = reqwest::Client::new();
    for path in ["/healthz", "/v1/nowhere", "/v1/qr.svg?payload=hello"] {
        let r = http.get(format!("{}{path}", w.url())).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"), "{path}");
        assert!(h.contains_key("cache-control"), "{path}");
    }
    let login = serde_json::json!({"phone": w.customers[0].1, "pin": PIN});
    let from = |headers: &[(&str, &str)]| {
        let mut r = http.post(format!("{}/v1/wallet/session", w.url())).json(&login);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    for refused in [vec![("origin", "https://evil.example")], vec![("sec-fetch-site", "cross-site")]] {
        let r = from(&refused).await.unwrap();
        assert_eq!(r.status(), 403, "{refused:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_rejected");
    }
    assert_eq!(from(&[("sec-fetch-site", "same-origin")]).await.unwrap().status(), 200);
    assert_eq!(from(&[]).await.unwrap().status(), 200, "a till or app sends no browser headers");
}

async fn clients_behind_a_trusted_proxy(db: Db) {
    let config = saoma_server::Config {
        rate_limit_per_ip: 5,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..config(&db)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = saoma_server::start(config, listener).await.unwrap();
    let http = reqwest::Client::new();
    // Forty clients behind one balancer are forty addresses, not one.
    for i in 0..40 {
        let r = http
            .get(format!("{}/healthz", server.url()))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "client {i}");
    }
    // And the audit log names the client, not the balancer.
    let created = http
        .post(format!("{}/v1/admin/customers", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-forwarded-for", "198.51.100.23")
        .json(&serde_json::json!({"phone": "13800001111", "name": "Fwd", "pin": PIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let kept = column(&db, "SELECT detail FROM audit_log WHERE action = 'customer.create'").await;
    assert!(kept[0].contains("198.51.100.23"), "{kept:?}");
    server.stop().await.unwrap();
}

async fn replays_do_not_spend_the_keys_budget(db: Db) {
    // One request a second with a burst of two.
    let config = saoma_server::Config { rate_limit_per_key: 1, ..config(&db) };
    let w = World::with_config(db, 0, 0, config).await;
    let k = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let url = format!("{}/v1/merchant/qr", w.url());
    let now = chrono::Utc::now().timestamp();
    let h = saoma_api::signing::sign_request("GET", &url, None, &k.key_id, &k.secret, now, "captured-1");
    let http = reqwest::Client::new();
    let send = || {
        http.get(&url)
            .header("signature-input", h.signature_input.clone())
            .header("signature", h.signature.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    // Someone replays the captured request over and over: each replay is refused as one,
    // and none is counted against the key.
    for i in 0..20 {
        let r = send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "replayed_request", "replay {i}");
    }
    let owner = saoma_client::Client::new(
        &w.url(),
        saoma_client::Credentials::Key { key_id: k.key_id.clone(), secret: k.secret.clone() },
    );
    owner.merchant_qr().await.expect("the key's own next request is within its budget");
}

async fn metrics_only_for_operators_or_on_their_own_address(db: Db) {
    let config = saoma_server::Config { metrics_listen: Some("127.0.0.1:0".parse().unwrap()), ..config(&db) };
    let w = World::with_config(db, 0, 0, config).await;
    let metrics_addr = w.server.metrics_addr.expect("a metrics address was asked for");
    let http = reqwest::Client::new();
    let metrics = format!("{}/metrics", w.url());
    // On the API's address, only an operator's token reads them.
    let r = http.get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(http.get(&metrics).bearer_auth("not-a-token").send().await.unwrap().status(), 401);
    let support = w.admin.create_operator("Monitoring", "support").await.unwrap();
    let r = http.get(&metrics).bearer_auth(&support.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("saoma_http_requests_total"));
    // On the metrics address (a private network), anyone there reads them, and nothing else.
    let r = http.get(format!("http://{metrics_addr}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("saoma_http_requests_total"));
    let r = http.get(format!("http://{metrics_addr}/v1/merchant/qr")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

async fn the_configuration_prints_no_secret(db: Db) {
    let config = config(&db);
    let printed = format!("{config:?}");
    assert!(printed.contains("admin_token"), "the fields are still named: {printed}");
    for secret in [ADMIN_TOKEN, TEST_MASTER_KEY] {
        assert!(!printed.contains(secret), "{printed}");
    }
    // A PostgreSQL URL's password is a secret too.
    let with_password = saoma_server::Config::new("postgres://saoma:hunter2secret@db.internal/saoma");
    let printed = format!("{with_password:?}");
    assert!(!printed.contains("hunter2secret") && printed.contains("db.internal"), "{printed}");
}

on_both!(
    replays_do_not_spend_the_keys_budget,
    metrics_only_for_operators_or_on_their_own_address,
    the_configuration_prints_no_secret,
    rate_limited_per_key,
    rate_limited_per_address,
    security_headers_and_cross_site_requests,
    clients_behind_a_trusted_proxy,
);
