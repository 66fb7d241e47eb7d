//! `saoma pos` as a cashier uses it: a misread is refused before any network call (exit 3,
//! "read it again"); while the server is down a reversal and a refund wait in the till's
//! queue file and go out, in order and once, when it is back; and the interactive till
//! reads a scanner's code and Enter from standard input, asks the amount, and prints the
//! outcome.

use saoma_api as api;
use saoma_client::{Client, Credentials};
use std::io::Write;
use std::process::{Command, Output, Stdio};

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
    let admin = Client::new(&server.url(), Credentials::Admin("root-token".into()));
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

    // The interactive till: a misread line, then a good scan and its amount.
    let code = wallet.payment_code().await.unwrap().code;
    let out = till.run(&[], Some(&format!("12345\n{code}\n12.50\nq\n")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("MISREAD") && said.contains("PAID 12.50 CNY"), "{said}");
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
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "{}", text(&out));

    // Back: the queue goes out once; a second sync sends nothing again.
    let server = start(&db).await;
    let till = Till { url: server.url(), ..till_clone(&till) };
    let out = till.run(&["queue"], None);
    assert!(text(&out).contains("Sent 2; 0 still waiting"), "{}", text(&out));
    let out = till.run(&["queue"], None);
    assert!(text(&out).contains("Sent 0; 0 still waiting"), "{}", text(&out));
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
