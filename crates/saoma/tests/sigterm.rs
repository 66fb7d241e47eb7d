//! `saoma serve` stopped with SIGTERM under load: it exits cleanly, every payment it
//! answered is in the database after a restart, no wallet lost money without a payment,
//! and the ledger balances.

use futures::future::join_all;
use saoma_client::{Client, Credentials};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ADMIN: &str = "sigterm-admin";

/// The server process, killed if the test ends early so it never outlives the test.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn serve(db: &str) -> (Server, String) {
    saoma_client::install_tls();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server(Some(
        Command::new(env!("CARGO_BIN_EXE_saoma"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", db])
            .env("SAOMA_ADMIN_TOKEN", ADMIN)
            .env("SAOMA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{url}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
            return (server, url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("saoma serve did not come up");
}

fn request(otn: &str, code: &str) -> saoma_api::CreatePaymentRequest {
    saoma_api::CreatePaymentRequest {
        out_trade_no: otn.into(),
        amount: 100,
        currency: "CNY".into(),
        subject: "Tea".into(),
        items: None,
        payment_code: Some(code.into()),
        expires_in: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let (mut child, url) = serve(&db).await;
    let admin = Client::new(&url, Credentials::Admin(ADMIN.into()));
    let m = admin
        .create_merchant(&saoma_api::CreateMerchantRequest {
            name: "Kiosk".into(),
            mcc: "5814".into(),
            city: "Shenzhen".into(),
            country: "CN".into(),
            currency: "CNY".into(),
            fee_bps: 30,
            timezone: None,
        })
        .await
        .unwrap();
    admin.approve_merchant(&m.id).await.unwrap();
    let k = admin.create_key(&m.id, None).await.unwrap();
    let till = Client::new(&url, Credentials::Key { key_id: k.key_id, secret: k.secret });
    let phones = ["13600000001", "13600000002", "13600000003", "13600000004"];
    let mut codes = Vec::new();
    for phone in phones {
        let c = admin.create_customer(phone, "Guest", "112233").await.unwrap();
        admin.top_up(&c.id, 100_000, "CNY", &format!("t-{phone}")).await.unwrap();
        let wallet = Client::new(&url, Credentials::None).wallet_session(phone, "112233").await.unwrap();
        for round in 0..10 {
            codes.push((format!("st-{phone}-{round}"), phone, wallet.payment_code().await.unwrap().code));
        }
    }
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let (till, answered) = (till.clone(), answered.clone());
        async move {
            join_all(codes.into_iter().map(|(otn, phone, code)| {
                let (till, answered) = (till.clone(), answered.clone());
                async move {
                    let r = till.create_payment(&request(&otn, &code)).await;
                    if r.is_ok() {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    (otn, phone, r)
                }
            }))
            .await
        }
    });
    while answered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut child = child.0.take().unwrap();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let results = load.await.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "saoma serve exited with {status}");

    let (_again, url) = serve(&db).await;
    let till = till.at(&url);
    let mut charged = std::collections::HashMap::<&str, i64>::new();
    for (otn, phone, result) in &results {
        let stored = till.payment_by_trade_no(otn, 0).await;
        if let Ok(p) = result {
            assert_eq!(
                stored.as_ref().map(|s| s.id.as_str()).ok(),
                Some(p.id.as_str()),
                "answered, then lost"
            );
        }
        if let Ok(s) = stored
            && s.status == "succeeded"
        {
            *charged.entry(phone).or_default() += s.amount;
        }
    }
    for phone in phones {
        let wallet = Client::new(&url, Credentials::None).wallet_session(phone, "112233").await.unwrap();
        let balance = wallet.wallet().await.unwrap().balances[0].available;
        assert_eq!(balance, 100_000 - charged.get(phone).copied().unwrap_or(0), "{phone}");
    }
    assert!(Client::new(&url, Credentials::Admin(ADMIN.into())).trial_balance().await.unwrap().balanced);
}
