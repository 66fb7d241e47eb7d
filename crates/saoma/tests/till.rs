//! `saoma pos` as a cashier uses it: a misread is refused before any network call (exit 3,
//! "read it again"); while the server is down a reversal and a refund wait in the till's
//! queue file, a charge is refused with "charges are never taken offline" (on screen and in
//! the JSON line), and the queue goes out, in order and once, with the next command once
//! the server is back; the interactive till reads a scanner's code and Enter from standard
//! input, asks the amount, prints an outcome per scan and the queue's state every turn.
//! And the queue itself: requests go out in the order asked, a new one never overtakes
//! those waiting, and a request whose answer was lost is sent again with its idempotency
//! key and done once.

use saoma_api as api;
use saoma_client::queue::{Fate, PosQueue, Queued, send_or_queue};
use saoma_client::{Client, Credentials};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Till {
    url: String,
    key_id: String,
    secret: String,
    queue: String,
}

impl Till {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_saoma"));
        cmd.arg("pos")
            .args(args)
            .env("SAOMA_URL", &self.url)
            .env("SAOMA_KEY_ID", &self.key_id)
            .env("SAOMA_KEY_SECRET", &self.secret)
            .env("SAOMA_POS_QUEUE", &self.queue)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let input = stdin.unwrap_or("").to_string();
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || pipe.write_all(input.as_bytes()));
        child.wait_with_output().unwrap()
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// An approved merchant with a funded customer (13600000001, PIN 135790); its key.
async fn shop(url: &str) -> api::KeyCreated {
    let admin = Client::new(url, Credentials::Admin("root-token".into()));
    let m = admin
        .create_merchant(&api::CreateMerchantRequest {
            name: "Noodle Bar".into(),
            mcc: "5812".into(),
            city: "Chengdu".into(),
            country: "CN".into(),
            currency: "CNY".into(),
            fee_bps: 60,
            timezone: None,
        })
        .await
        .unwrap();
    admin.approve_merchant(&m.id).await.unwrap();
    let key = admin.create_key(&m.id, None).await.unwrap();
    let c = admin.create_customer("13600000001", "Li", "135790").await.unwrap();
    admin.top_up(&c.id, 100_000, "CNY", "seed").await.unwrap();
    key
}

async fn start(db: &str) -> saoma_server::RunningServer {
    let config = saoma_server::Config {
        admin_token: Some("root-token".into()),
        master_key: Some("ab".repeat(32)),
        settle_daily: false,
        ..saoma_server::Config::new(db)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    saoma_server::start(config, listener).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_till_refuses_misreads_queues_when_offline_and_reads_a_scanner() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let server = start(&db).await;
    let key = shop(&server.url()).await;
    let wallet =
        Client::new(&server.url(), Credentials::None).wallet_session("13600000001", "135790").await.unwrap();
    let till = Till {
        url: server.url(),
        key_id: key.key_id.clone(),
        secret: key.secret.clone(),
        queue: dir.path().join("queue.db").display().to_string(),
    };

    // A misread: refused before any network call, even with no server at all.
    let offline = Till { url: "http://127.0.0.1:9".into(), ..till_clone(&till) };
    let out = offline.run(&["charge", "--code", "661234567890123450", "--amount", "100"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("read it again"), "{}", text(&out));

    // The interactive till: a misread line, then a good scan and its amount; the queue's
    // state is shown each turn, empty too, and the till says charges never go offline.
    let code = wallet.payment_code().await.unwrap().code;
    let out = till.run(&[], Some(&format!("12345\n{code}\n12.50\nq\n")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("MISREAD") && said.contains("PAID 12.50 CNY"), "{said}");
    assert!(said.contains("[queue empty]") && said.contains("never taken offline"), "{said}");
    let paid: api::Payment =
        serde_json::from_str(said.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();

    // The server goes away: a refund and a reversal wait in the queue, in order.
    server.stop().await.unwrap();
    let out =
        till.run(&["refund", "--payment-id", &paid.id, "--amount", "250", "--out-refund-no", "r-1"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("queued"), "{}", text(&out));
    let out = till.run(&["cancel", "--out-trade-no", "never-charged"], None);
    assert!(text(&out).contains("queued"), "{}", text(&out));
    let out = till.run(&["queue"], None);
    let listed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = listed.iter().map(|e| e["request"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["refund", "cancel"], "in the order asked: {}", text(&out));

    // A charge is never taken offline, and the till says so plainly, in the JSON line too.
    let unsent = saoma_core::paycode::online_code(42);
    let out = till.run(&["charge", "--code", &unsent, "--amount", "100"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("NOT CHARGED") && said.contains("never taken offline"), "{said}");
    assert!(said.contains("another payment method"), "{said}");
    assert!(!said.contains("Sent "), "the replay tried first, quietly: {said}");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["charged"], false, "{line}");
    assert!(line["note"].as_str().unwrap().contains("never taken offline"), "{line}");
    // The interactive till likewise, with the queue's state.
    let out = till.run(&[], Some(&format!("{unsent}\n1.00\nq\n")));
    let said = text(&out);
    assert!(said.contains("NOT CHARGED") && said.contains("never taken offline"), "{said}");
    assert!(said.contains("[queue: 2 request(s) waiting"), "{said}");

    // Back: the next command sends the queue first, once, then does its own work.
    let server = start(&db).await;
    let till = Till { url: server.url(), ..till_clone(&till) };
    let code = wallet_again(&server.url()).await.payment_code().await.unwrap().code;
    let out = till.run(&["charge", "--code", &code, "--amount", "300"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Sent 2 queued request(s)"), "{}", text(&out));
    let out = till.run(&["queue"], None);
    assert!(text(&out).contains("Sent 0; 0 still waiting"), "{}", text(&out));
    assert!(text(&out).contains("[queue empty]"), "{}", text(&out));
    let merchant = Client::new(&server.url(), Credentials::Key { key_id: key.key_id, secret: key.secret });
    let p = merchant.payment(&paid.id, 0).await.unwrap();
    assert_eq!(p.refunded_amount, 250, "refunded once");
    // The queued reversal closed the order number: a late charge with it is refused.
    let code = wallet_again(&server.url()).await.payment_code().await.unwrap().code;
    let late = api::CreatePaymentRequest {
        out_trade_no: "never-charged".into(),
        amount: 100,
        currency: "CNY".into(),
        subject: "late".into(),
        items: None,
        payment_code: Some(code),
        expires_in: None,
    };
    assert_eq!(merchant.create_payment(&late).await.unwrap_err().code(), Some("payment_closed"));
    server.stop().await.unwrap();
}

fn till_clone(t: &Till) -> Till {
    Till { url: t.url.clone(), key_id: t.key_id.clone(), secret: t.secret.clone(), queue: t.queue.clone() }
}

async fn wallet_again(url: &str) -> Client {
    Client::new(url, Credentials::None).wallet_session("13600000001", "135790").await.unwrap()
}

/// A proxy in front of the server that can lose answers: the request reaches the server,
/// which does it and answers, but the answer never comes back (the connection is cut).
/// `lose` says how many answers to lose next.
async fn lossy_proxy(server_url: &str) -> (String, Arc<AtomicUsize>) {
    let upstream = server_url.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lose = Arc::new(AtomicUsize::new(0));
    let counter = lose.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
            tokio::spawn(pipe(client, server, counter.clone()));
        }
    });
    (url, lose)
}

async fn pipe(mut client: tokio::net::TcpStream, mut server: tokio::net::TcpStream, lose: Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut up, mut down) = ([0u8; 16384], [0u8; 16384]);
    loop {
        tokio::select! {
            n = client.read(&mut up) => {
                let Ok(n @ 1..) = n else { return };
                if server.write_all(&up[..n]).await.is_err() { return }
            }
            n = server.read(&mut down) => {
                let Ok(n @ 1..) = n else { return };
                if lose.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1)).is_ok() {
                    return; // the server answered; the till never hears it
                }
                if client.write_all(&down[..n]).await.is_err() { return }
            }
        }
    }
}

fn refund(payment_id: &str, out_refund_no: &str, amount: i64) -> Queued {
    Queued::Refund {
        payment_id: payment_id.into(),
        refund: api::CreateRefundRequest {
            out_refund_no: out_refund_no.into(),
            amount,
            reason: None,
            items: None,
        },
    }
}

fn refund_no(request: &Queued) -> &str {
    match request {
        Queued::Refund { refund, .. } => &refund.out_refund_no,
        Queued::Cancel { out_trade_no } => out_trade_no,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_replays_in_order_and_once_when_an_answer_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&format!("sqlite://{}", dir.path().join("t.db").display())).await;
    let key = shop(&server.url()).await;
    let credentials = Credentials::Key { key_id: key.key_id, secret: key.secret };
    let merchant = Client::new(&server.url(), credentials.clone());
    let wallet = wallet_again(&server.url()).await;
    let mut paid = Vec::new();
    for (otn, amount) in [("q-1", 1000), ("q-2", 500)] {
        let code = wallet.payment_code().await.unwrap().code;
        let sale = api::CreatePaymentRequest {
            out_trade_no: otn.into(),
            amount,
            currency: "CNY".into(),
            subject: "sale".into(),
            items: None,
            payment_code: Some(code),
            expires_in: None,
        };
        paid.push(merchant.create_payment(&sale).await.unwrap().id);
    }
    let (p, q) = (&paid[0], &paid[1]);
    let queue = PosQueue::open(&dir.path().join("queue.db").display().to_string()).await.unwrap();

    // Offline: four requests wait. In order, r-3 is one too many (300 + 600 + 200 > 1000);
    // in any other order another one would be refused instead.
    let dead = Client::with_timeout("http://127.0.0.1:9", credentials.clone(), Duration::from_secs(2));
    for request in [refund(p, "r-1", 300), refund(p, "r-2", 600), refund(p, "r-3", 200)] {
        assert!(matches!(send_or_queue(&dead, &queue, request).await.unwrap().1, Fate::Queued));
    }
    send_or_queue(&dead, &queue, Queued::Cancel { out_trade_no: "gone".into() }).await.unwrap();

    // The network returns but the first answer is lost: r-1 was done, the till does not
    // know it, keeps it first, and queues a new request behind it instead of sending it.
    let (url, lose) = lossy_proxy(&server.url()).await;
    let flaky = Client::with_timeout(&url, credentials.clone(), Duration::from_secs(5));
    lose.store(1, Ordering::SeqCst);
    let (earlier, fate) = send_or_queue(&flaky, &queue, refund(q, "r-4", 100)).await.unwrap();
    assert!(matches!(fate, Fate::Queued), "{fate:?}");
    assert_eq!((earlier.done, earlier.waiting), (0, 4), "{earlier:?}");
    assert_eq!(merchant.payment(p, 0).await.unwrap().refunded_amount, 300, "r-1 reached the server");
    assert_eq!(merchant.payment(q, 0).await.unwrap().refunded_amount, 0, "r-4 did not overtake");
    let waiting = queue.waiting().await.unwrap();
    let order: Vec<&str> = waiting.iter().map(|e| refund_no(&e.request)).collect();
    assert_eq!(order, ["r-1", "r-2", "r-3", "gone", "r-4"]);
    // Tried before each later request went in (three offline), then through the proxy.
    assert_eq!(waiting[0].attempts, 4);
    assert!(waiting[0].last_error.is_some());

    // Answers come back: r-1 again under its key is answered, not done twice; the rest in order.
    let replay = queue.replay(&flaky).await.unwrap();
    assert_eq!((replay.done, replay.waiting), (4, 0), "{replay:?}");
    let refused: Vec<&str> = replay.refused.iter().map(|(r, _)| refund_no(r)).collect();
    assert_eq!(refused, ["r-3"], "{replay:?}");
    assert_eq!(merchant.payment(p, 0).await.unwrap().refunded_amount, 900, "r-1 once, then r-2");
    assert_eq!(merchant.payment(q, 0).await.unwrap().refunded_amount, 100);
    assert!(queue.waiting().await.unwrap().is_empty());
    let again = queue.replay(&flaky).await.unwrap();
    assert_eq!((again.done, again.refused.len(), again.waiting), (0, 0, 0));
    server.stop().await.unwrap();
}
