//! Runs a full flow with every log line captured (down to trace level), then looks for the
//! secrets the flow used — the PIN, the session token, a key secret, a device secret, a
//! webhook secret and the full payment codes — in the logs and, byte by byte, in the
//! database files. None may be there.

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        captured
    })
}

async fn no_secret_reaches_logs_or_disk(db: Db) {
    let logs = logs();
    let w = World::new(db, 1, 0).await;
    let pin = "975318";
    let phone = "13911112222";
    let c = w.admin.create_customer(phone, "Quiet", pin).await.unwrap();
    w.admin.top_up(&c.id, 50_000, "CNY", "quiet-seed").await.unwrap();
    let http = reqwest::Client::new();
    let session: saoma_api::Session = http
        .post(format!("{}/v1/wallet/session", w.url()))
        .json(&serde_json::json!({"phone": phone, "pin": pin}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wallet =
        saoma_client::Client::new(&w.url(), saoma_client::Credentials::Session(session.token.clone()));
    let key = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let merchant = saoma_client::Client::new(
        &w.url(),
        saoma_client::Credentials::Key { key_id: key.key_id.clone(), secret: key.secret.clone() },
    );
    let hook = merchant.set_webhook("http://127.0.0.1:9/hook").await.unwrap();
    let device = wallet.enroll_device(pin).await.unwrap();
    let online = wallet.payment_code().await.unwrap().code;
    let p = merchant.create_payment(&charge("quiet-1", 1500, Some(&online))).await.unwrap();
    merchant.refund(&p.id, "quiet-r1", 500).await.unwrap();
    let offline = device.code_at(chrono::Utc::now().timestamp()).unwrap();
    merchant.create_payment(&charge("quiet-2", 700, Some(&offline))).await.unwrap();
    // A large payment confirmed with the PIN, and a wrong PIN.
    w.admin.top_up(&c.id, 500_000, "CNY", "quiet-big").await.unwrap();
    let code = wallet.payment_code().await.unwrap().code;
    let big = merchant.create_payment(&charge("quiet-3", 200_000, Some(&code))).await.unwrap();
    assert!(wallet.confirm(&big.id, "000000").await.is_err());
    wallet.confirm(&big.id, pin).await.unwrap();
    // An operator's token in use, and a key rotated by its owner.
    let op = w.admin.create_operator("Quiet support", "support").await.unwrap();
    let op_token = op.token.clone();
    let support = saoma_client::Client::new(&w.url(), saoma_client::Credentials::Admin(op_token.clone()));
    support.customer(&c.id).await.unwrap();
    let rotated = merchant.own_rotate_key(&key.key_id, 60).await.unwrap();
    let secrets = [
        ("operator token", op_token),
        ("rotated key secret", rotated.secret.clone()),
        ("PIN", pin.to_string()),
        ("session token", session.token.clone()),
        ("key secret", key.secret.clone()),
        ("device secret", device.secret.clone()),
        ("webhook secret", hook.secret.clone()),
        ("online payment code", online.clone()),
        ("offline payment code", offline.clone()),
        ("large payment code", code.clone()),
    ];
    let World { server, db, .. } = w;
    server.stop().await.unwrap();

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(logged.contains("Applied schema migration"), "the logs were not captured");
    for (what, secret) in &secrets {
        assert!(!logged.contains(secret.as_str()), "the {what} is in the logs");
    }
    if !db.is_postgres() {
        let path = db.url.trim_start_matches("sqlite://").to_string();
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                bytes.extend(b);
            }
        }
        assert!(bytes.len() > 10_000, "the database files were not read");
        let haystack = String::from_utf8_lossy(&bytes);
        for (what, secret) in &secrets {
            assert!(!haystack.contains(secret.as_str()), "the {what} is in the database");
        }
    }
}

on_both!(no_secret_reaches_logs_or_disk);
