//! `saoma pos`: the cashier's till on the command line. `charge`, `cancel` and `refund` do
//! one thing; with no subcommand the till reads scans from standard input as a keyboard
//! wedge scanner types them (the code, then Enter), asks for the amount and prints each
//! outcome. Reversals and refunds that cannot reach the server wait in the till's queue
//! file and go out, in order, when the network returns: every command that talks to the
//! server, and every turn of the loop, sends them first. Charges are never taken offline,
//! and the till says so.

use anyhow::Context;
use saoma_api as api;
use saoma_client::pos::{self, Outcome, PosSettings};
use saoma_client::queue::{Fate, PosQueue, Queued, Replay, send_or_queue};
use saoma_client::{Client, Credentials};
use saoma_core::{Currency, Money};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `saoma pos`.
#[derive(clap::Args)]
pub struct PosArgs {
    #[command(subcommand)]
    command: Option<PosCommand>,
    #[arg(long, env = "SAOMA_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    #[arg(long, env = "SAOMA_KEY_ID", global = true)]
    key_id: Option<String>,
    #[arg(long, env = "SAOMA_KEY_SECRET", hide_env_values = true, global = true)]
    key_secret: Option<String>,
    /// The till's queue file: reversals and refunds waiting for the network. Keep it beside
    /// the till's configuration (the file its SAOMA_* variables come from); by default it is
    /// in the current directory.
    #[arg(long, env = "SAOMA_POS_QUEUE", default_value = "saoma-pos-queue.db", global = true)]
    queue: String,
    #[arg(long, default_value = "CNY", global = true)]
    currency: String,
}

#[derive(clap::Subcommand)]
enum PosCommand {
    /// Charges a scanned payment code; exit 0 paid, 2 declined, 3 not charged (a misread,
    /// closed, reversed, reversal queued, or the server unreachable: charges are never taken
    /// offline), 1 error.
    Charge {
        #[arg(long)]
        code: String,
        /// Amount in minor units (1250 = ¥12.50).
        #[arg(long)]
        amount: i64,
        #[arg(long)]
        out_trade_no: Option<String>,
        #[arg(long, default_value = "POS sale")]
        subject: String,
    },
    /// Reverses a sale by its order number (queued when the server is unreachable).
    Cancel {
        #[arg(long)]
        out_trade_no: String,
    },
    /// Refunds part or all of a payment (queued when the server is unreachable); needs a
    /// manager or merchant key.
    Refund {
        #[arg(long)]
        payment_id: String,
        /// Amount in minor units.
        #[arg(long)]
        amount: i64,
        #[arg(long)]
        out_refund_no: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Sends what waits in the queue and shows what is left.
    Queue,
}

/// A fresh order or refund number: the till keeps it before sending. The random tail keeps
/// two tills of one merchant apart even in the same millisecond.
fn order_number(kind: &str) -> String {
    format!("{kind}-{}-{:08x}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"), rand::random::<u32>())
}

/// The till: its server, its queue file and its currency.
struct Till {
    client: Client,
    queue: PosQueue,
    queue_path: String,
    currency: Currency,
}

/// Runs `saoma pos`; the exit code.
pub async fn run(args: PosArgs) -> anyhow::Result<i32> {
    let (Some(key_id), Some(secret)) = (args.key_id.clone(), args.key_secret.clone()) else {
        anyhow::bail!("set SAOMA_KEY_ID and SAOMA_KEY_SECRET (or --key-id and --key-secret)");
    };
    let client =
        Client::with_timeout(&args.url, Credentials::Key { key_id, secret }, Duration::from_secs(15));
    let queue =
        PosQueue::open(&args.queue).await.with_context(|| format!("opening the queue {}", args.queue))?;
    let currency = Currency::from_code(&args.currency)
        .ok_or_else(|| anyhow::anyhow!("unknown currency {:?}", args.currency))?;
    let till = Till { client, queue, queue_path: args.queue, currency };
    match args.command {
        None => interactive(&till).await,
        Some(PosCommand::Charge { code, amount, out_trade_no, subject }) => {
            catch_up(&till).await?;
            let req = sale(&code, amount, currency, out_trade_no, subject);
            let outcome =
                pos::charge_queued(&till.client, &till.queue, &req, &PosSettings::default()).await?;
            Ok(report(&outcome))
        }
        Some(PosCommand::Cancel { out_trade_no }) => send(&till, Queued::Cancel { out_trade_no }).await,
        Some(PosCommand::Refund { payment_id, amount, out_refund_no, reason }) => {
            let refund = api::CreateRefundRequest {
                out_refund_no: out_refund_no.unwrap_or_else(|| order_number("rfd")),
                amount,
                reason,
                items: None,
            };
            send(&till, Queued::Refund { payment_id, refund }).await
        }
        Some(PosCommand::Queue) => {
            let replay = till.queue.replay(&till.client).await?;
            tell_refusals(&replay);
            eprintln!("Sent {}; {} still waiting for the network.", replay.done, replay.waiting);
            for e in till.queue.waiting().await? {
                println!(
                    "{}",
                    serde_json::json!({"seq": e.seq, "request": e.request, "attempts": e.attempts,
                    "last_error": e.last_error})
                );
            }
            show_queue(&till).await?;
            Ok(0)
        }
    }
}

/// Sends what waits in the queue before anything else: says what went out, and says
/// nothing when the network is still down (the queue's state line tells that).
async fn catch_up(till: &Till) -> anyhow::Result<()> {
    let replay = till.queue.replay(&till.client).await?;
    tell_replay(&replay);
    Ok(())
}

fn tell_replay(replay: &Replay) {
    if replay.done > 0 {
        eprintln!("Sent {} queued request(s) that waited for the network.", replay.done);
    }
    tell_refusals(replay);
}

fn tell_refusals(replay: &Replay) {
    for (request, answer) in &replay.refused {
        eprintln!("REFUSED by the server, not sent again: {}: {answer}. Ask a manager.", describe(request));
    }
}

/// A queued request in words.
fn describe(request: &Queued) -> String {
    match request {
        Queued::Cancel { out_trade_no } => format!("the reversal of order {out_trade_no}"),
        Queued::Refund { payment_id, refund } => {
            format!("refund {} (amount {}) of payment {payment_id}", refund.out_refund_no, refund.amount)
        }
    }
}

fn sale(
    code: &str,
    amount: i64,
    currency: Currency,
    otn: Option<String>,
    subject: String,
) -> api::CreatePaymentRequest {
    api::CreatePaymentRequest {
        out_trade_no: otn.unwrap_or_else(|| order_number("pos")),
        amount,
        currency: currency.code().to_string(),
        subject,
        items: None,
        payment_code: Some(code.trim().to_string()),
        expires_in: None,
    }
}

async fn send(till: &Till, request: Queued) -> anyhow::Result<i32> {
    let (earlier, fate) = send_or_queue(&till.client, &till.queue, request).await?;
    tell_replay(&earlier);
    match fate {
        Fate::Done(answer) => {
            println!("{answer}");
            eprintln!("Done.");
            Ok(0)
        }
        Fate::Queued => {
            eprintln!(
                "The server cannot be reached: queued in {}; it goes out, in order, when the network \
                 returns (with the next `saoma pos` command, or `saoma pos queue`).",
                till.queue_path
            );
            show_queue(till).await?;
            Ok(0)
        }
        Fate::Refused(e) => Err(anyhow::anyhow!("the server refused: {e}")),
    }
}

/// What the till says when a charge could not be made for want of the network.
const NEVER_OFFLINE: &str = "Charges are never taken offline: the customer was not charged. \
                             Ask for another payment method, or charge again when the till is back online.";

/// Prints an outcome for the cashier; the exit code.
fn report(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Paid(p) => {
            println!("{}", serde_json::to_string(p).unwrap_or_default());
            eprintln!(
                "PAID {} {} ({}).",
                Money::new(p.amount, currency_of(&p.currency)).to_decimal(),
                p.currency,
                p.id
            );
            0
        }
        Outcome::Declined { code, payment_id } => {
            println!("{}", serde_json::json!({"declined": code, "payment_id": payment_id}));
            eprintln!("DECLINED: {code}.");
            2
        }
        Outcome::NotCharged(p) => {
            println!("{}", serde_json::json!({"not_charged": p}));
            eprintln!("NOT CHARGED: the sale was closed or reversed.");
            3
        }
        Outcome::Misread(why) => {
            println!("{}", serde_json::json!({"misread": why}));
            eprintln!("MISREAD ({why}): read it again. Nothing was sent.");
            3
        }
        Outcome::ReversalQueued { out_trade_no } => {
            println!(
                "{}",
                serde_json::json!({"reversal_queued": out_trade_no, "charged": false, "note": NEVER_OFFLINE})
            );
            eprintln!(
                "NOT CHARGED: the server cannot be reached; the reversal of {out_trade_no} is queued and goes out when the network returns."
            );
            eprintln!("{NEVER_OFFLINE}");
            3
        }
        Outcome::Offline => {
            println!("{}", serde_json::json!({"offline": true, "charged": false, "note": NEVER_OFFLINE}));
            eprintln!("NOT CHARGED: the server cannot be reached; nothing was sent.");
            eprintln!("{NEVER_OFFLINE}");
            3
        }
    }
}

fn currency_of(code: &str) -> Currency {
    Currency::from_code(code).unwrap_or(Currency::CNY)
}

/// The till as a loop: scan, amount, outcome. Each turn first sends what waits in the queue
/// and shows the queue's state.
async fn interactive(till: &Till) -> anyhow::Result<i32> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut err = tokio::io::stderr();
    eprintln!("Saoma till. Scan the customer's code (the scanner types it and Enter).");
    eprintln!("Type `sync` to send queued requests, `q` to quit.");
    eprintln!(
        "Charges are never taken offline; reversals wait in the queue {} when the network is down.",
        till.queue_path
    );
    loop {
        catch_up(till).await?;
        show_queue(till).await?;
        err.write_all(b"scan> ").await?;
        err.flush().await?;
        let Some(line) = lines.next_line().await? else { return Ok(0) };
        let line = line.trim();
        match line {
            "" => continue,
            "q" | "quit" => return Ok(0),
            "sync" => {
                let r = till.queue.replay(&till.client).await?;
                tell_refusals(&r);
                eprintln!("Sent {}; {} waiting.", r.done, r.waiting);
                continue;
            }
            _ => {}
        }
        if let Err(why) = pos::check_scan(line) {
            eprintln!("MISREAD ({why}): read it again.");
            continue;
        }
        err.write_all(b"amount> ").await?;
        err.flush().await?;
        let Some(amount) = lines.next_line().await? else { return Ok(0) };
        let amount = match Money::parse_decimal(amount.trim(), till.currency) {
            Ok(m) if m.amount_minor() > 0 => m,
            _ => {
                eprintln!("Not an amount (for example 12.50). Scan again.");
                continue;
            }
        };
        charge_one(till, line, amount).await;
    }
}

/// One sale of the interactive till; its outcome on screen.
async fn charge_one(till: &Till, code: &str, amount: Money) {
    let req = sale(code, amount.amount_minor(), till.currency, None, "POS sale".into());
    eprintln!("Charging {} {}, order {}.", amount.to_decimal(), till.currency.code(), req.out_trade_no);
    match pos::charge_queued(&till.client, &till.queue, &req, &PosSettings::default()).await {
        Ok(outcome) => {
            report(&outcome);
        }
        Err(e) => {
            eprintln!("ERROR: {e}. The outcome is unknown: check the order {} later.", req.out_trade_no)
        }
    }
}

/// The queue's state, one line, empty or not.
async fn show_queue(till: &Till) -> anyhow::Result<()> {
    let waiting = till.queue.waiting().await?;
    match waiting.first() {
        None => eprintln!("[queue empty]"),
        Some(oldest) => eprintln!(
            "[queue: {} request(s) waiting for the network, oldest {} ({} tries{})]",
            waiting.len(),
            describe(&oldest.request),
            oldest.attempts,
            oldest.last_error.as_deref().map(|e| format!(", last: {e}")).unwrap_or_default()
        ),
    }
    Ok(())
}
