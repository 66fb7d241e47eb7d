//! Proves what the screens stand on, over HTTP on both backends: the pages and their
//! embedded assets are served by the server under a strict content security policy, in
//! the browser's language; a browser signs in with the same credentials as the API's
//! clients and gets an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind TLS); a
//! cookie alone never changes anything without the session's CSRF token, nor from
//! another site; signing a customer out everywhere ends the wallet page's session too;
//! and a till needs a manager's key, held for one refund, to refund.

#[macro_use]
mod common;

use common::*;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};

/// A browser: the cookie it got at sign-in and the CSRF token the page carries.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(base: &str, path: &str, body: Value) -> Result<Browser, (u16, Value)> {
        let http = reqwest::Client::new();
        let r = http.post(format!("{base}{path}")).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let set = r.headers().get(SET_COOKIE).map(|v| v.to_str().unwrap().to_string());
        let answer: Value = r.json().await.unwrap();
        if status != 200 {
            return Err((status, answer));
        }
        let set = set.expect("a sign-in sets a cookie");
        let cookie = set.split(';').next().unwrap().to_string();
        Ok(Browser { http, base: base.into(), cookie, csrf: answer["csrf_token"].as_str().unwrap().into() })
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>, csrf: bool) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.base)).header(COOKIE, &self.cookie);
        if csrf {
            req = req.header("x-csrf-token", &self.csrf);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

async fn pages_and_assets_are_served_strictly(db: Db) {
    let w = World::new(db, 0, 0).await;
    let http = reqwest::Client::new();
    for (path, word) in [
        ("/", "/pos"),
        ("/pos", "key_id"),
        ("/wallet", "phone"),
        ("/merchant", "key_id"),
        ("/console", "token"),
    ] {
        let r = http
            .get(format!("{}{path}", w.url()))
            .header("accept-language", "zh-CN,zh;q=0.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{path}: {csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains("lang=\"zh-CN\""), "{path} follows Accept-Language");
        assert!(html.contains(word), "{path} has its sign-in form");
        // The only inline script is a JSON data block, which never runs.
        let inline = html.matches("<script").count() - html.matches("<script src=").count();
        assert_eq!(
            inline,
            html.matches("<script type=\"application/json\"").count(),
            "{path}: no inline script"
        );
    }
    let en = http.get(format!("{}/pos?lang=en", w.url())).send().await.unwrap();
    assert!(en.headers()[SET_COOKIE].to_str().unwrap().starts_with("lang=en"));
    assert!(en.text().await.unwrap().contains("lang=\"en\""));
    // A query string that does not parse is a client's mistake in the API's envelope.
    let bad = http.get(format!("{}/pos?lang=a&lang=b", w.url())).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let v: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    for asset in ["app.js", "app.css", "vendor/jsQR.js", "vendor/chart.umd.min.js"] {
        let r = http.get(format!("{}/assets/{asset}", w.url())).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(!r.headers()[CONTENT_TYPE].to_str().unwrap().contains("json"), "{asset}");
    }
    assert_eq!(http.get(format!("{}/assets/nope.js", w.url())).send().await.unwrap().status(), 404);
}

async fn cookie_sessions_need_the_csrf_token(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let admin = w.admin.create_key(&w.merchant_id, Some(&w.till_id)).await.unwrap();
    let bad = Browser::sign_in(
        &w.url(),
        "/v1/web/merchant/session",
        json!({"key_id": admin.key_id, "secret": "wrong"}),
    )
    .await;
    assert_eq!(bad.err().unwrap().0, 401);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/web/merchant/session", w.url()))
        .json(&json!({"key_id": admin.key_id, "secret": admin.secret}))
        .send()
        .await
        .unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"), "{set}");
    let till = Browser::sign_in(
        &w.url(),
        "/v1/web/merchant/session",
        json!({"key_id": admin.key_id, "secret": admin.secret}),
    )
    .await
    .unwrap();
    // Reads need only the cookie; the page shows the signed-in merchant.
    assert_eq!(till.send("GET", "/v1/payments", None, false).await.0, 200);
    // A write with the cookie but without the token is refused, and changes nothing.
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let sale = json!({"out_trade_no": "web-1", "amount": 500, "currency": "CNY", "subject": "Tea", "payment_code": code});
    let (status, body) = till.send("POST", "/v1/payments", Some(sale.clone()), false).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf_rejected")));
    assert_eq!(w.balance(0).await, 10_000);
    let forged = Browser {
        http: till.http.clone(),
        base: till.base.clone(),
        cookie: till.cookie.clone(),
        csrf: "0".repeat(32),
    };
    assert_eq!(forged.send("POST", "/v1/payments", Some(sale.clone()), true).await.0, 403);
    let (status, p) = till.send("POST", "/v1/payments", Some(sale), true).await;
    assert_eq!((status, p["status"].as_str()), (200, Some("succeeded")));
    // From another site, even with the cookie and the token, nothing happens.
    let r = till
        .http
        .post(format!("{}/v1/payments/{}/cancel", w.url(), p["id"].as_str().unwrap()))
        .header(COOKIE, &till.cookie)
        .header("x-csrf-token", &till.csrf)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A till cannot refund; a manager's key held for the refund can, and is handed back.
    let refund = json!({"out_refund_no": "web-r1", "amount": 100});
    let path = format!("/v1/payments/{}/refunds", p["id"].as_str().unwrap());
    assert_eq!(till.send("POST", &path, Some(refund.clone()), true).await.0, 403);
    let other_till = w.admin.create_key(&w.merchant_id, Some(&w.till_id)).await.unwrap();
    let not_manager = json!({"key_id": other_till.key_id, "secret": other_till.secret});
    assert_eq!(till.send("POST", "/v1/web/merchant/manager", Some(not_manager), true).await.0, 403);
    let owner = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let manager = json!({"key_id": owner.key_id, "secret": owner.secret});
    assert_eq!(till.send("POST", "/v1/web/merchant/manager", Some(manager), true).await.0, 200);
    let (status, r) = till.send("POST", &path, Some(refund), true).await;
    assert_eq!((status, r["amount"].as_i64()), (200, Some(100)));
    assert_eq!(till.send("DELETE", "/v1/web/merchant/manager", None, true).await.0, 204);
    let again = json!({"out_refund_no": "web-r2", "amount": 100});
    assert_eq!(till.send("POST", &path, Some(again), true).await.0, 403);
    // Signing out needs the page's token, ends its session at once, and leaves the
    // browser's other sessions alone.
    let phone = w.customers[0].1.clone();
    let me = Browser::sign_in(&w.url(), "/v1/web/wallet/session", json!({"phone": phone, "pin": PIN}))
        .await
        .unwrap();
    let both = Browser { cookie: format!("{}; {}", till.cookie, me.cookie), ..till };
    assert_eq!(both.send("POST", "/v1/web/sign-out", Some(json!({})), false).await.0, 403);
    assert_eq!(both.send("POST", "/v1/web/sign-out", Some(json!({})), true).await.0, 204);
    assert_eq!(both.send("GET", "/v1/payments", None, false).await.0, 401);
    assert_eq!(me.send("GET", "/v1/wallet", None, false).await.0, 200);
}

async fn wallet_and_console_sessions(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let phone = w.customers[0].1.clone();
    let wrong =
        Browser::sign_in(&w.url(), "/v1/web/wallet/session", json!({"phone": phone, "pin": "000000"})).await;
    assert_eq!(wrong.err().unwrap().0, 401);
    let me = Browser::sign_in(&w.url(), "/v1/web/wallet/session", json!({"phone": phone, "pin": PIN}))
        .await
        .unwrap();
    let (status, wallet) = me.send("GET", "/v1/wallet", None, false).await;
    assert_eq!((status, wallet["balances"][0]["available"].as_i64()), (200, Some(10_000)));
    assert_eq!(me.send("POST", "/v1/wallet/payment-codes", Some(json!({})), false).await.0, 403);
    assert_eq!(me.send("POST", "/v1/wallet/payment-codes", Some(json!({})), true).await.0, 200);
    let desk =
        Browser::sign_in(&w.url(), "/v1/web/operator/session", json!({"token": ADMIN_TOKEN})).await.unwrap();
    assert_eq!(desk.send("GET", "/v1/admin/ledger/trial-balance", None, false).await.0, 200);
    let wrong = Browser::sign_in(&w.url(), "/v1/web/operator/session", json!({"token": "nope"})).await;
    assert_eq!(wrong.err().unwrap().0, 401);
    // The operator signs the customer out everywhere: the wallet page's session ends too.
    let path = format!("/v1/admin/customers/{}/sessions/revoke", w.customers[0].0);
    assert_eq!(desk.send("POST", &path, Some(json!({"reason": "phone stolen"})), false).await.0, 403);
    assert_eq!(desk.send("POST", &path, Some(json!({"reason": "phone stolen"})), true).await.0, 200);
    assert_eq!(me.send("GET", "/v1/wallet", None, false).await.0, 401);
}

async fn cookies_are_secure_behind_tls(db: Db) {
    let config = saoma_server::Config { public_scheme: "https".into(), ..config(&db) };
    let w = World::with_config(db, 1, 0, config).await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/web/operator/session", w.url()))
        .json(&json!({"token": ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set.contains("; Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
}

async fn the_screens_lists(db: Db) {
    let w = World::new(db, 2, 500_000).await;
    let wallet = w.wallet(0).await;
    // A till's scan above the password-free limit waits for the customer: the wallet lists it.
    let code = wallet.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("big", 150_000, Some(&code))).await.unwrap();
    assert_eq!(p.next_action.as_deref(), Some("customer_confirm"));
    let pending: Value = wallet.call("GET", "/v1/wallet/pending", None::<&()>).await.unwrap();
    assert_eq!(pending["data"][0]["payment"]["id"].as_str(), Some(p.id.as_str()));
    assert_eq!(pending["data"][0]["merchant_name"].as_str(), Some("Tea House"));
    let other: Value = w.wallet(1).await.call("GET", "/v1/wallet/pending", None::<&()>).await.unwrap();
    assert_eq!(other["data"].as_array().unwrap().len(), 0, "another customer sees nothing");
    // A transfer's recipient, masked before the sender confirms.
    let to = json!({"to_phone": w.customers[1].1});
    let who: Value = wallet.call("POST", "/v1/wallet/recipients/resolve", Some(&to)).await.unwrap();
    assert_eq!(
        (who["name_masked"].as_str(), who["phone_masked"].as_str()),
        (Some("C*** 1***"), Some("139******01"))
    );
    let me = json!({"to_phone": w.customers[0].1});
    assert_eq!(
        wallet.call::<Value>("POST", "/v1/wallet/recipients/resolve", Some(&me)).await.unwrap_err().status(),
        Some(400)
    );
    let nobody = json!({"to_phone": "10000000000"});
    assert_eq!(
        wallet
            .call::<Value>("POST", "/v1/wallet/recipients/resolve", Some(&nobody))
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    // The back office: terminals, the sales report with fees and net, settlements.
    wallet.confirm(&p.id, PIN).await.unwrap();
    w.merchant.refund(&p.id, "r-big", 50_000).await.unwrap();
    let tills: Value = w.merchant.call("GET", "/v1/merchant/terminals", None::<&()>).await.unwrap();
    assert_eq!(tills["data"].as_array().unwrap().len(), 2);
    let own: Value = w.till.call("GET", "/v1/merchant/terminals", None::<&()>).await.unwrap();
    assert_eq!(own["data"].as_array().unwrap().len(), 1, "a till sees only itself");
    let r: Value = w.merchant.call("GET", "/v1/merchant/reports/sales?days=7", None::<&()>).await.unwrap();
    let totals = &r["report"]["totals"];
    assert_eq!(
        (totals["count"].as_i64(), totals["amount"].as_i64(), totals["refunded"].as_i64()),
        (Some(1), Some(150_000), Some(50_000))
    );
    assert_eq!(totals["net"].as_i64(), Some(150_000 - 900 - 50_000 + 300));
    assert_eq!(r["report"]["by_terminal"][0]["label"].as_str(), Some("Till 1"));
    assert_eq!(r["report"]["by_product"][0]["key"].as_str(), Some("T1"));
    assert_eq!(r["report"]["by_day"].as_array().unwrap().len(), 7);
    assert_eq!(
        w.till.call::<Value>("GET", "/v1/merchant/reports/sales", None::<&()>).await.unwrap_err().status(),
        Some(403)
    );
    let s: Value = w.merchant.call("GET", "/v1/merchant/settlements", None::<&()>).await.unwrap();
    assert!(s["data"].as_array().unwrap().is_empty());
    // The operator's lists: the review queue, customers with balances, the audit log.
    let m = w.admin.create_merchant(&merchant_req("Noodle Stall")).await.unwrap();
    let queue: Value =
        w.admin.call("GET", "/v1/admin/merchants?status=pending_review", None::<&()>).await.unwrap();
    let ids: Vec<&str> =
        queue["data"].as_array().unwrap().iter().map(|d| d["merchant"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [m.id.as_str()]);
    let found: Value = w
        .admin
        .call("GET", &format!("/v1/admin/customers?q={}", w.customers[1].1), None::<&()>)
        .await
        .unwrap();
    assert_eq!(found["data"][0]["customer"]["id"].as_str(), Some(w.customers[1].0.as_str()));
    assert_eq!(found["data"][0]["balances"][0]["available"].as_i64(), Some(500_000));
    let log: Value = w.admin.call("GET", "/v1/admin/audit?limit=5", None::<&()>).await.unwrap();
    assert_eq!(log["data"].as_array().unwrap().len(), 5);
    assert_eq!(log["data"][0]["action"].as_str(), Some("merchant.create"));
    let support = w.admin.create_operator("Sun", "support").await.unwrap();
    let support =
        saoma_client::Client::new(&w.url(), saoma_client::Credentials::Admin(support.token.clone()));
    assert_eq!(
        support.call::<Value>("GET", "/v1/admin/audit", None::<&()>).await.unwrap_err().status(),
        Some(403)
    );
    assert!(support.call::<Value>("GET", "/v1/admin/customers", None::<&()>).await.is_ok());
    assert!(support.call::<Value>("GET", "/v1/admin/merchants", None::<&()>).await.is_ok());
    // The lists share their paths with the admin's writes, which stay the admin's.
    let c = json!({"phone": "13700000000", "name": "X", "pin": "123456"});
    assert_eq!(
        support.call::<Value>("POST", "/v1/admin/customers", Some(&c)).await.unwrap_err().status(),
        Some(403)
    );
    let req = merchant_req("Sneaky");
    assert_eq!(
        support.call::<Value>("POST", "/v1/admin/merchants", Some(&req)).await.unwrap_err().status(),
        Some(403)
    );
}

on_both!(
    pages_and_assets_are_served_strictly,
    cookie_sessions_need_the_csrf_token,
    wallet_and_console_sessions,
    cookies_are_secure_behind_tls,
    the_screens_lists,
);
