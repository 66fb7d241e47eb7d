//! `saoma serve` killed with SIGKILL, several times, while tills pay through it, on SQLite
//! and on PostgreSQL. After the last restart: every payment answered to a till is stored as
//! answered; each wallet lost exactly what its own charged payments took (no debit without
//! its payment); the trial balance balances; each charged payment has exactly one
//! `payment.succeeded` outbox event, matched by payment id; and every event reached the
//! merchant's webhook at least once, a repeat carrying the same `webhook-id` and the same
//! body (the receiver refuses some first attempts, so repeats are really seen), so the
//! merchant can drop it.
//!
//! The bounded run is 3 rounds of 4 tills, each killed after 15 more answers. The long
//! form is `e2e/crash-long.sh`; the same test reads SAOMA_CRASH_ROUNDS, SAOMA_CRASH_TILLS
//! and SAOMA_CRASH_ROUND_MS (each round then runs between half and all of that many
//! milliseconds before the kill, so the kill lands at varied points).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use saoma_client::{Client, Credentials};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "crash-admin";
const MASTER_KEY: &str = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
const PIN: &str = "112233";
const START_BALANCE: i64 = 1_000_000;

/// How hard to push: the bounded run's values, or the long form's from the environment.
struct Settings {
    rounds: usize,
    tills: usize,
    /// Unset: each round is killed after 15 more answers (4 s at most).
    round_ms: Option<u64>,
}

impl Settings {
    fn from_env() -> Settings {
        fn var(name: &str) -> Option<u64> {
            let v = std::env::var(name).ok()?;
            let n = v.trim().parse().ok().filter(|n| *n > 0);
            Some(n.unwrap_or_else(|| panic!("{name}={v:?}: a whole number above 0, please")))
        }
        Settings {
            rounds: var("SAOMA_CRASH_ROUNDS").map_or(3, |n| n as usize),
            tills: var("SAOMA_CRASH_TILLS").map_or(4, |n| n as usize),
            round_ms: var("SAOMA_CRASH_ROUND_MS"),
        }
    }
}

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

/// What the merchant's webhook endpoint saw: every attempt's body by `webhook-id`, the
/// ids it accepted (answered 2xx), and deliveries that came without an id.
#[derive(Default)]
struct Hook {
    attempts: HashMap<String, Vec<String>>,
    accepted: HashSet<String>,
    without_id: usize,
}

type Seen = Arc<Mutex<Hook>>;

/// The merchant's webhook endpoint.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Records an attempt. The first attempt of every fourth new event is refused (503), so
/// the server sends it again and the test sees what a repeat carries.
async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: String) -> StatusCode {
    let mut hook = seen.lock().unwrap();
    let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) else {
        hook.without_id += 1;
        return StatusCode::BAD_REQUEST;
    };
    let refuse = !hook.attempts.contains_key(id) && hook.attempts.len() % 4 == 0;
    hook.attempts.entry(id.to_string()).or_default().push(body);
    if refuse {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    hook.accepted.insert(id.to_string());
    StatusCode::OK
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

/// A funded customer: phone and id.
type Customer = (String, String);

/// Sets up a merchant with a webhook and one funded customer per till; returns the till's
/// key and the customers.
async fn set_up(url: &str, hook: &str, tills: usize) -> (Credentials, Vec<Customer>) {
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
    let mut customers = Vec::new();
    for i in 0..tills {
        let phone = format!("1360000{i:04}");
        let c = admin.create_customer(&phone, "Guest", PIN).await.unwrap();
        admin.top_up(&c.id, START_BALANCE, "CNY", &format!("t-{phone}")).await.unwrap();
        customers.push((phone, c.id));
    }
    (key, customers)
}

/// What a till was answered: order number → (phone, payment id, status).
type Answers = Arc<Mutex<HashMap<String, (String, String, String)>>>;

/// Tills paying until stopped, one per customer.
fn load(
    url: &str,
    key: &Credentials,
    customers: &[Customer],
    round: usize,
    answers: Answers,
) -> Vec<tokio::task::JoinHandle<()>> {
    customers
        .iter()
        .enumerate()
        .map(|(i, (phone, _))| {
            let till = Client::with_timeout(url, key.clone(), Duration::from_secs(5));
            let (wallet, phone, answers) =
                (Client::new(url, Credentials::None), phone.clone(), answers.clone());
            tokio::spawn(async move { pay(till, wallet, phone, format!("c{round}-{i}"), answers).await })
        })
        .collect()
}

/// One till, until the server is gone: each sale a fresh code from the customer's wallet,
/// then the charge. A refusal (a PIN check a killed server left in flight, a busy server)
/// is waited out and tried again; no answer at all means the server was killed.
async fn pay(till: Client, wallet: Client, phone: String, prefix: String, answers: Answers) {
    use saoma_client::ClientError::Transport;
    let wallet = loop {
        match wallet.wallet_session(&phone, PIN).await {
            Ok(w) => break w,
            Err(Transport(_)) => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    for n in 0.. {
        let code = match wallet.payment_code().await {
            Ok(code) => code,
            Err(Transport(_)) => return,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let otn = format!("{prefix}-{n}");
        match till.create_payment(&sale(&otn, &code.code, 100 + n % 50)).await {
            Ok(p) => {
                answers.lock().unwrap().insert(otn, (phone.clone(), p.id, p.status));
            }
            Err(Transport(_)) => return,
            Err(_) => {}
        }
    }
}

/// Lets the tills pay for a while: 15 more answers (4 s at most), or the long form's time,
/// between half and all of SAOMA_CRASH_ROUND_MS, varied by round.
async fn pay_for_a_while(settings: &Settings, round: usize, answers: &Answers) {
    if let Some(ms) = settings.round_ms {
        let share = (round as u64 * 7919) % 10;
        tokio::time::sleep(Duration::from_millis(ms / 2 + ms / 2 * share / 9)).await;
        return;
    }
    let before = answers.lock().unwrap().len();
    for _ in 0..400 {
        if answers.lock().unwrap().len() >= before + 15 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The rows of a query, read on a pool of its own.
async fn rows<T>(db: &str, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db).await.unwrap();
    let out = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&pool).await.unwrap();
    pool.close().await;
    out
}

/// A payment that took money from a wallet: id, customer id, what it still holds (its
/// amount less what was refunded).
type Charged = (String, String, i64);
/// An event of the merchant's outbox: id, kind, data (JSON).
type Event = (String, String, String);

async fn crash_rounds(db: &str) {
    let settings = Settings::from_env();
    let (hook, seen) = receiver().await;
    let server = Server::start(db).await;
    let (key, customers) = set_up(&server.1, &hook, settings.tills).await;
    let answers: Answers = Arc::default();
    let mut server = Some(server);
    for round in 0..settings.rounds {
        let s = match server.take() {
            Some(s) => s,
            None => Server::start(db).await,
        };
        let tasks = load(&s.1, &key, &customers, round, answers.clone());
        pay_for_a_while(&settings, round, &answers).await;
        s.kill();
        for t in tasks {
            t.await.unwrap();
        }
        eprintln!(
            "crash: round {} of {} killed, {} answers so far",
            round + 1,
            settings.rounds,
            answers.lock().unwrap().len()
        );
    }
    let s = Server::start(db).await;
    let answers = answers.lock().unwrap().clone();
    let succeeded = answers.values().filter(|(_, _, status)| status == "succeeded").count();
    eprintln!("crash: {} answers, {succeeded} of them succeeded payments", answers.len());
    assert!(succeeded >= 10, "the tills were answered only {} times, {succeeded} paid", answers.len());
    check_answers(&Client::new(&s.1, key.clone()), &answers).await;
    let charged: Vec<Charged> = rows(
        db,
        "SELECT id, COALESCE(customer_id, ''), CAST(amount - refunded_amount AS BIGINT) FROM payments \
         WHERE status IN ('succeeded', 'refunded')",
    )
    .await;
    check_wallets(&s.1, &customers, &charged, &answers).await;
    let admin = Client::new(&s.1, Credentials::Admin(ADMIN.into()));
    assert!(admin.trial_balance().await.unwrap().balanced, "the trial balance balances");
    let events: Vec<Event> =
        rows(db, "SELECT id, kind, data FROM events WHERE merchant_id IS NOT NULL").await;
    check_outbox(&charged, &events);
    // Deliveries a dead node had claimed fall due again after their lease (60 s); an idle
    // node sends a backlog 16 a second.
    check_webhooks(&events, &seen, Duration::from_secs(90 + events.len() as u64 / 10)).await;
}

/// Every payment answered to a till is stored with the id and status it was answered.
async fn check_answers(till: &Client, answers: &HashMap<String, (String, String, String)>) {
    for (otn, (_phone, id, status)) in answers {
        let stored = till
            .payment_by_trade_no(otn, 0)
            .await
            .unwrap_or_else(|e| panic!("{otn} answered, then lost: {e}"));
        assert_eq!((&stored.id, &stored.status), (id, status), "{otn} is stored as it was answered");
    }
}

/// Each wallet lost exactly what its own charged payments hold, and a payment answered
/// as charged to a till took it from the customer who showed the code.
async fn check_wallets(
    url: &str,
    customers: &[Customer],
    charged: &[Charged],
    answers: &HashMap<String, (String, String, String)>,
) {
    for (phone, id) in customers {
        let wallet = Client::new(url, Credentials::None).wallet_session(phone, PIN).await.unwrap();
        let lost = START_BALANCE - wallet.wallet().await.unwrap().balances[0].available;
        let paid: i64 = charged.iter().filter(|(_, c, _)| c == id).map(|(_, _, held)| held).sum();
        assert_eq!(lost, paid, "{phone}'s wallet lost what its own payments took, no more, no less");
    }
    let payer: HashMap<&str, &str> = charged.iter().map(|(p, c, _)| (p.as_str(), c.as_str())).collect();
    let ids: HashMap<&str, &str> = customers.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    for (otn, (phone, payment, status)) in answers {
        if status == "succeeded" {
            assert_eq!(payer.get(payment.as_str()), Some(&ids[phone.as_str()]), "{otn} was paid by {phone}");
        }
    }
}

/// Each charged payment has exactly one `payment.succeeded` event, naming it; no such
/// event names a payment that took no money.
fn check_outbox(charged: &[Charged], events: &[Event]) {
    let mut by_payment: HashMap<String, Vec<&str>> = HashMap::new();
    for (id, kind, data) in events.iter().filter(|(_, kind, _)| kind == "payment.succeeded") {
        let data: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("event {id} ({kind}): {e}"));
        let payment = data["id"].as_str().unwrap_or_else(|| panic!("event {id} names no payment"));
        by_payment.entry(payment.to_string()).or_default().push(id);
    }
    for (payment, _, _) in charged {
        let found = by_payment.remove(payment).unwrap_or_default();
        assert_eq!(found.len(), 1, "payment {payment} has one payment.succeeded event: {found:?}");
    }
    assert!(by_payment.is_empty(), "payment.succeeded events of payments that took nothing: {by_payment:?}");
}

/// Every outbox event reached the webhook (accepted at least once, within `settle`);
/// every `webhook-id` seen is one event, each attempt carrying that event's body; and a
/// payment's success reached the merchant under one `webhook-id` only.
async fn check_webhooks(events: &[Event], seen: &Seen, settle: Duration) {
    let deadline = Instant::now() + settle;
    let missing = || {
        let hook = seen.lock().unwrap();
        events
            .iter()
            .filter(|(id, _, _)| !hook.accepted.contains(id))
            .map(|(id, _, _)| id.clone())
            .collect::<Vec<_>>()
    };
    while !missing().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = missing();
    assert!(missing.is_empty(), "{} events never reached the webhook: {missing:?}", missing.len());
    let hook = seen.lock().unwrap();
    assert_eq!(hook.without_id, 0, "every delivery carries a webhook-id");
    let by_id: HashMap<&str, (&str, &str)> =
        events.iter().map(|(id, kind, data)| (id.as_str(), (kind.as_str(), data.as_str()))).collect();
    let mut per_payment: HashMap<String, HashSet<&str>> = HashMap::new();
    for (id, bodies) in &hook.attempts {
        let (kind, data) =
            by_id.get(id.as_str()).unwrap_or_else(|| panic!("webhook-id {id} is no outbox event"));
        assert!(bodies.iter().all(|b| b == &bodies[0]), "every attempt of {id} carries the same body");
        let body: Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(
            (body["id"].as_str(), body["type"].as_str()),
            (Some(id.as_str()), Some(*kind)),
            "{id}'s body"
        );
        assert_eq!(
            body["data"],
            serde_json::from_str::<Value>(data).unwrap(),
            "{id} carries its event's object"
        );
        if *kind == "payment.succeeded" {
            let payment = body["data"]["id"].as_str().unwrap_or_default().to_string();
            per_payment.entry(payment).or_default().insert(id);
        }
    }
    for (payment, ids) in per_payment {
        assert_eq!(ids.len(), 1, "payment {payment} reached the merchant under one webhook-id: {ids:?}");
    }
    let repeated = hook.attempts.values().filter(|b| b.len() > 1).count();
    assert!(repeated > 0, "the refused first attempts were sent again");
}

/// The outbox is matched by payment id, not by count: one payment's event twice and
/// another's missing is caught.
#[test]
#[should_panic(expected = "has one payment.succeeded event")]
fn an_event_for_the_wrong_payment_is_caught() {
    let charged = [("pay_1".to_string(), "cus_1".to_string(), 100), ("pay_2".into(), "cus_1".into(), 100)];
    let event = |id: &str, payment: &str| {
        (id.to_string(), "payment.succeeded".to_string(), format!(r#"{{"id":"{payment}"}}"#))
    };
    check_outbox(&charged, &[event("evt_1", "pay_1"), event("evt_2", "pay_1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    crash_rounds(&format!("sqlite://{}", dir.path().join("crash.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_under_load() {
    let name = format!("saoma_crash_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    crash_rounds(&url).await;
}
