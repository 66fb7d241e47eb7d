//! `saoma serve` killed with SIGKILL, three times, while tills pay through it, on SQLite and
//! on PostgreSQL. After the last restart: every payment answered to a till is stored as
//! answered, no wallet lost money without a payment, the trial balance balances, every
//! succeeded payment has its outbox event, and every event reached the merchant's webhook
//! at least once (a repeat carries the same `webhook-id`, so the merchant can drop it).

use axum::extract::State;
use axum::http::HeaderMap;
use saoma_client::{Client, Credentials};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ADMIN: &str = "crash-admin";
const MASTER_KEY: &str = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
const PIN: &str = "112233";
const CUSTOMERS: usize = 4;
const START_BALANCE: i64 = 1_000_000;

/// The server process; killed when dropped, so it never outlives the test.
struct Server(Option<Child>, String);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Server {
    async fn start(db: &str) -> Server {
        saoma_client::install_tls();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let server = Server(
            Some(
                Command::new(env!("CARGO_BIN_EXE_saoma"))
                    .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", db])
                    .env("SAOMA_ADMIN_TOKEN", ADMIN)
                    .env("SAOMA_MASTER_KEY", MASTER_KEY)
                    .env("SAOMA_WEBHOOK_ALLOW_PRIVATE", "1")
                    .env("SAOMA_RISK_VELOCITY", "off")
                    .env("SAOMA_RATE_LIMIT_IP", "0")
                    .env("SAOMA_RATE_LIMIT_KEY", "0")
                    .env("SAOMA_LOG", "error")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            ),
            url.clone(),
        );
        for _ in 0..400 {
            if reqwest::get(format!("{url}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("saoma serve did not come up on {db}");
    }

    /// SIGKILL: no shutdown, no flush, nothing the process could still do.
    fn kill(mut self) {
        if let Some(mut c) = self.0.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

/// The merchant's webhook endpoint: remembers every `webhook-id` it was sent.
async fn receiver() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(seen): State<Arc<Mutex<HashMap<String, usize>>>>, headers: HeaderMap| async move {
                    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                        *seen.lock().unwrap().entry(id.to_string()).or_default() += 1;
                    }
                    "ok"
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn sale(otn: &str, code: &str, amount: i64) -> saoma_api::CreatePaymentRequest {
    saoma_api::CreatePaymentRequest {
        out_trade_no: otn.into(),
        amount,
        currency: "CNY".into(),
        subject: "Tea".into(),
        items: None,
        payment_code: Some(code.into()),
        expires_in: None,
    }
}

/// Sets up a merchant with a webhook and funded customers; returns the till's key and
/// the customers' phones.
async fn set_up(url: &str, hook: &str) -> (Credentials, Vec<String>) {
    let admin = Client::new(url, Credentials::Admin(ADMIN.into()));
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
    let key = Credentials::Key { key_id: k.key_id, secret: k.secret };
    Client::new(url, key.clone()).set_webhook(hook).await.unwrap();
    let mut phones = Vec::new();
    for i in 0..CUSTOMERS {
        let phone = format!("1360000{i:04}");
        let c = admin.create_customer(&phone, "Guest", PIN).await.unwrap();
        admin.top_up(&c.id, START_BALANCE, "CNY", &format!("t-{phone}")).await.unwrap();
        phones.push(phone);
    }
    (key, phones)
}

/// What a till was answered: order number → (phone, payment id, status).
type Answers = Arc<Mutex<HashMap<String, (String, String, String)>>>;

/// Tills paying until stopped: each sale a fresh code, then the charge.
fn load(
    url: &str,
    key: &Credentials,
    phones: &[String],
    round: usize,
    answers: Answers,
) -> Vec<tokio::task::JoinHandle<()>> {
    phones
        .iter()
        .enumerate()
        .map(|(i, phone)| {
            let (url, key, phone, answers) = (url.to_string(), key.clone(), phone.clone(), answers.clone());
            tokio::spawn(async move {
                let till = Client::with_timeout(&url, key, Duration::from_secs(5));
                let Ok(wallet) = Client::new(&url, Credentials::None).wallet_session(&phone, PIN).await
                else {
                    return;
                };
                for n in 0.. {
                    let Ok(code) = wallet.payment_code().await else { return };
                    let otn = format!("c{round}-{i}-{n}");
                    match till.create_payment(&sale(&otn, &code.code, 100 + n)).await {
                        Ok(p) => {
                            answers.lock().unwrap().insert(otn, (phone.clone(), p.id, p.status));
                        }
                        Err(saoma_client::ClientError::Transport(_)) => return,
                        Err(_) => {}
                    }
                }
            })
        })
        .collect()
}

async fn count(db: &str, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

async fn crash_rounds(db: &str) {
    let (hook, seen) = receiver().await;
    let server = Server::start(db).await;
    let (key, phones) = set_up(&server.1, &hook).await;
    let answers: Answers = Arc::default();
    let mut server = Some(server);
    for round in 0..3 {
        let s = match server.take() {
            Some(s) => s,
            None => Server::start(db).await,
        };
        let tasks = load(&s.1, &key, &phones, round, answers.clone());
        // Let the tills pay for a moment, then pull the plug mid-flight.
        let before = answers.lock().unwrap().len();
        for _ in 0..400 {
            if answers.lock().unwrap().len() >= before + 15 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s.kill();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let s = Server::start(db).await;
    let till = Client::new(&s.1, key.clone());
    let answers = answers.lock().unwrap().clone();
    assert!(answers.len() >= 10, "the tills were answered only {} times", answers.len());
    let mut charged: HashMap<String, i64> = HashMap::new();
    for (otn, (_phone, id, status)) in &answers {
        let stored = till
            .payment_by_trade_no(otn, 0)
            .await
            .unwrap_or_else(|e| panic!("{otn} answered, then lost: {e}"));
        assert_eq!((&stored.id, &stored.status), (id, status), "{otn} is stored as it was answered");
    }
    // Every stored charge, answered or not, is what the wallets lost.
    let admin = Client::new(&s.1, Credentials::Admin(ADMIN.into()));
    for phone in &phones {
        let wallet = Client::new(&s.1, Credentials::None).wallet_session(phone, PIN).await.unwrap();
        let balance = wallet.wallet().await.unwrap().balances[0].available;
        charged.insert(phone.clone(), START_BALANCE - balance);
    }
    let paid =
        count(db, "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments WHERE status = 'succeeded'")
            .await;
    assert_eq!(charged.values().sum::<i64>(), paid, "no wallet lost money without a payment");
    assert!(admin.trial_balance().await.unwrap().balanced, "the trial balance balances");
    let succeeded =
        count(db, "SELECT CAST(COUNT(*) AS BIGINT) FROM payments WHERE status = 'succeeded'").await;
    let events =
        count(db, "SELECT CAST(COUNT(*) AS BIGINT) FROM events WHERE kind = 'payment.succeeded'").await;
    assert_eq!(events, succeeded, "every succeeded payment has its outbox event");
    // Deliveries a dead node had claimed fall due again after their lease (60 s).
    let expected: HashSet<String> = {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(db).await.unwrap();
        let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM events WHERE kind = 'payment.succeeded'")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        ids.into_iter().map(|(id,)| id).collect()
    };
    for _ in 0..900 {
        let got: HashSet<String> = seen.lock().unwrap().keys().cloned().collect();
        if expected.is_subset(&got) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got: HashSet<String> = seen.lock().unwrap().keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "{} events never reached the webhook: {missing:?}", missing.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    crash_rounds(&format!("sqlite://{}", dir.path().join("crash.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_under_load() {
    let server =
        std::env::var("SAOMA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let url = format!("{server}/saoma_crash_{}", std::process::id());
    if let Err(e) = saoma_store::create_postgres_database(&url).await {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true needs PostgreSQL at {server}: {e}");
        eprintln!("skipped: no PostgreSQL at {server} ({e})");
        return;
    }
    crash_rounds(&url).await;
    saoma_store::drop_postgres_database(&url).await.unwrap();
}
