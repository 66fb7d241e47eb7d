//! The `saoma` command: serve, demo, pos, wallet, admin, qr. Thin: the server, the client
//! and the POS engine do the work.

mod bench;
mod demo;
mod desk;
mod private_file;
mod serve;
mod till;
mod verify;

/// Every request allocates and frees many small buffers across the runtime's threads
/// (headers, JSON, rows), which mimalloc serves with less CPU than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use saoma_client::{Client, Credentials};
use serve::{ServeArgs, default_database, master_key, master_key_file, master_key_from_env};

#[derive(Parser)]
#[command(name = "saoma", version, about = "Scan-to-pay: payment server, POS, wallet and admin tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the payment server.
    Serve(ServeArgs),
    /// Starts a server on a fresh demo database with a merchant, a till and two customers.
    Demo {
        #[arg(long, env = "SAOMA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Folder for the demo database and credentials.
        #[arg(long, default_value = "saoma-data")]
        data_dir: String,
    },
    /// The cashier's till: with no subcommand, reads scans from standard input.
    Pos(till::PosArgs),
    /// The customer's commands.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// The operator's commands.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// QR tools.
    #[command(subcommand)]
    Qr(QrCommand),
    /// Checks a receipt's signature offline; prints its claims (exit 0) or why not (exit 1).
    VerifyReceipt(verify::VerifyArgs),
    /// Measures payments per second against the database's own speed (pgbench, raw SQL) and
    /// checks the books after each run; see docs/performance.md.
    Bench(bench::BenchArgs),
    /// Prints the OpenAPI 3.1 document of the HTTP API (what `docs/openapi.json` holds and
    /// a server serves at `/openapi.json`).
    Openapi,
}

#[derive(clap::Args)]
struct ServerEnv {
    #[arg(long, env = "SAOMA_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Shows a payment code as digits and QR: online, or offline from an enrolled device file.
    Code {
        #[arg(long, env = "SAOMA_PHONE")]
        phone: Option<String>,
        #[arg(long, env = "SAOMA_PIN", hide_env_values = true)]
        pin: Option<String>,
        /// A device file from `saoma wallet enroll`: make the code offline.
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        server: ServerEnv,
    },
    /// Fetches the next 48 hours of a device file's schedule (the device must be online).
    Refresh {
        #[arg(long, env = "SAOMA_PHONE")]
        phone: String,
        #[arg(long, env = "SAOMA_PIN", hide_env_values = true)]
        pin: String,
        /// The device file from `saoma wallet enroll`, updated in place.
        #[arg(long)]
        device: String,
        #[command(flatten)]
        server: ServerEnv,
    },
    /// Enrols this machine as a device that makes codes offline; writes the device file.
    Enroll {
        #[arg(long, env = "SAOMA_PHONE")]
        phone: String,
        #[arg(long, env = "SAOMA_PIN", hide_env_values = true)]
        pin: String,
        #[arg(long)]
        out: String,
        #[command(flatten)]
        server: ServerEnv,
    },
    /// Shows balances.
    Balance {
        #[arg(long, env = "SAOMA_PHONE")]
        phone: String,
        #[arg(long, env = "SAOMA_PIN", hide_env_values = true)]
        pin: String,
        #[command(flatten)]
        server: ServerEnv,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Prints the ledger's trial balance; exit 1 when it does not balance.
    TrialBalance {
        #[command(flatten)]
        server: ServerEnv,
        #[arg(long, env = "SAOMA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Settles a finished business day for every merchant; writes the payout file
    /// (payouts-DATE.csv) and the settlement report (settlement-DATE.json).
    Settle {
        #[arg(long)]
        date: String,
        /// Folder for the payout file and report.
        #[arg(long, default_value = ".")]
        out: String,
        #[command(flatten)]
        server: ServerEnv,
        #[arg(long, env = "SAOMA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Compares payments, ledger, statements and settlements of a day; prints every
    /// difference and exits 1 when there is one.
    Reconcile {
        #[arg(long)]
        date: String,
        #[command(flatten)]
        server: ServerEnv,
        #[arg(long, env = "SAOMA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Re-seals every secret under a new master key (stop the servers first). The old key
    /// comes from SAOMA_MASTER_KEY or the SQLite key file, which is then updated.
    RotateMasterKey {
        /// The database (default: ./saoma-data/saoma.db).
        #[arg(long, env = "SAOMA_DATABASE_URL")]
        database: Option<String>,
        /// The new key, 64 hex characters (default: a random one, printed).
        #[arg(long, env = "SAOMA_NEW_MASTER_KEY", hide_env_values = true)]
        new_key: Option<String>,
    },
    /// Walks the audit log's hash chains against the newest signed checkpoint of their
    /// heads; names the first broken link, a chain cut short or removed, and exits 1 if any.
    VerifyAudit {
        #[command(flatten)]
        server: ServerEnv,
        #[arg(long, env = "SAOMA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    #[command(flatten)]
    Desk(desk::DeskCommand),
    /// Approves a merchant after review.
    Approve {
        merchant_id: String,
        #[command(flatten)]
        server: ServerEnv,
        #[arg(long, env = "SAOMA_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
}

#[derive(Subcommand)]
enum QrCommand {
    /// Prints what a scanned string is, as JSON; exit 1 when it cannot be read, 4 when it
    /// claims to be Saoma's and its signature is not valid.
    Decode(verify::QrDecodeArgs),
}

/// Prints a QR code with Unicode half blocks, readable by a phone from the terminal.
pub fn print_qr(payload: &str) {
    match qrcode::QrCode::new(payload.as_bytes()) {
        Ok(code) => {
            let text = code
                .render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .build();
            println!("{text}");
        }
        Err(e) => eprintln!("cannot draw a QR code: {e}"),
    }
}

/// What `saoma wallet enroll` writes: enough to make codes with no network until the
/// schedule ends (`saoma wallet refresh` fetches the next one).
#[derive(serde::Serialize, serde::Deserialize)]
struct DeviceFile {
    device_id: String,
    secret: String,
    slot: u32,
    /// Absent in files of versions that handed out a shared mask key: `refresh` adds it.
    #[serde(default)]
    schedule: Option<saoma_api::CodeSchedule>,
}

fn read_device_file(path: &str) -> anyhow::Result<DeviceFile> {
    serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
        .with_context(|| format!("{path} is not a device file: enrol the device again"))
}

fn write_device_file(path: &str, file: &DeviceFile) -> anyhow::Result<()> {
    private_file::write(path, serde_json::to_string_pretty(file)?)
}

async fn wallet(cmd: WalletCommand) -> anyhow::Result<i32> {
    match cmd {
        WalletCommand::Code { phone, pin, device, server } => {
            let code = if let Some(path) = device {
                let file = read_device_file(&path)?;
                let refresh = || format!("{path}: run `saoma wallet refresh --device {path}` while online");
                let schedule = file.schedule.as_ref().with_context(refresh)?;
                saoma_api::offline_code(&file.secret, file.slot, schedule, chrono::Utc::now().timestamp())
                    .with_context(refresh)?
            } else {
                let (Some(phone), Some(pin)) = (phone, pin) else {
                    bail!("give --phone and --pin, or --device FILE")
                };
                let session =
                    Client::new(&server.url, Credentials::None).wallet_session(&phone, &pin).await?;
                session.payment_code().await?.code
            };
            print_qr(&code);
            // The same code as a Code 128 barcode, for tills with a laser scanner.
            if let Ok(bars) = saoma_core::barcode::code128_terminal(&code, 4) {
                eprint!("\n{bars}\n");
            }
            println!("{code}");
            eprintln!("Valid for up to 60 seconds, once. Give the digits to `saoma pos charge --code`.");
            Ok(0)
        }
        WalletCommand::Enroll { phone, pin, out, server } => {
            let session = Client::new(&server.url, Credentials::None).wallet_session(&phone, &pin).await?;
            let d = session.enroll_device(&pin).await?;
            let file = DeviceFile {
                device_id: d.device_id,
                secret: d.secret,
                slot: d.slot,
                schedule: Some(d.schedule),
            };
            write_device_file(&out, &file)?;
            eprintln!("Enrolled {}; device file written to {out} (keep it secret).", file.device_id);
            Ok(0)
        }
        WalletCommand::Refresh { phone, pin, device, server } => {
            let mut file = read_device_file(&device)?;
            let session = Client::new(&server.url, Credentials::None).wallet_session(&phone, &pin).await?;
            file.schedule = Some(session.device_schedule(&file.device_id).await?);
            write_device_file(&device, &file)?;
            eprintln!("Offline codes of {} now work for the next 48 hours.", file.device_id);
            Ok(0)
        }
        WalletCommand::Balance { phone, pin, server } => {
            let session = Client::new(&server.url, Credentials::None).wallet_session(&phone, &pin).await?;
            println!("{}", serde_json::to_string_pretty(&session.wallet().await?)?);
            Ok(0)
        }
    }
}

async fn admin(cmd: AdminCommand) -> anyhow::Result<i32> {
    match cmd {
        AdminCommand::TrialBalance { server, admin_token } => {
            let tb = Client::new(&server.url, Credentials::Admin(admin_token)).trial_balance().await?;
            println!("{}", serde_json::to_string_pretty(&tb)?);
            Ok(if tb.balanced { 0 } else { 1 })
        }
        AdminCommand::Settle { date, out, server, admin_token } => {
            let report = Client::new(&server.url, Credentials::Admin(admin_token)).settle(&date).await?;
            let rows = &report.settlements;
            let mut csv =
                String::from("settlement_id,merchant_id,merchant_name,currency,amount,business_date\n");
            for r in rows.iter().filter(|r| r.amount > 0) {
                let currency = r.currency.as_str();
                let amount = saoma_core::money::Currency::from_code(currency)
                    .map(|c| saoma_core::money::Money::new(r.amount, c).to_decimal())
                    .with_context(|| {
                        format!("settlement {} is in an unknown currency {currency}", r.settlement_id)
                    })?;
                let name = r.merchant_name.replace('"', "\"\"");
                csv.push_str(&format!(
                    "{},{},\"{name}\",{currency},{amount},{date}\n",
                    r.settlement_id, r.merchant_id
                ));
            }
            std::fs::create_dir_all(&out)?;
            let payouts = std::path::Path::new(&out).join(format!("payouts-{date}.csv"));
            let summary = std::path::Path::new(&out).join(format!("settlement-{date}.json"));
            std::fs::write(&payouts, csv)?;
            std::fs::write(&summary, serde_json::to_string_pretty(&report)?)?;
            for r in rows {
                println!(
                    "{} {} {} paid {} carried {} ({})",
                    r.merchant_id,
                    r.currency,
                    r.merchant_name,
                    r.amount,
                    r.carried,
                    r.outcome.name()
                );
            }
            println!("wrote {} and {}", payouts.display(), summary.display());
            Ok(0)
        }
        AdminCommand::Reconcile { date, server, admin_token } => {
            let report = Client::new(&server.url, Credentials::Admin(admin_token)).reconcile(&date).await?;
            let differences = &report.differences;
            for d in differences {
                println!(
                    "DIFFERENCE {}: {} (expected {}, found {})",
                    d.merchant_id.as_deref().unwrap_or("-"),
                    d.what,
                    d.expected,
                    d.found
                );
            }
            println!(
                "{date}: {} payments, {} refunds checked, {} difference(s)",
                report.checked.payments,
                report.checked.refunds,
                differences.len()
            );
            Ok(if differences.is_empty() { 0 } else { 1 })
        }
        AdminCommand::RotateMasterKey { database, new_key } => {
            let database = match database {
                Some(d) => d,
                None => default_database()?,
            };
            let old = master_key(&database)?;
            let from_file = master_key_from_env().is_none();
            let new = match new_key {
                Some(k) => k,
                None if from_file => hex::encode(rand::random::<[u8; 32]>()),
                None => bail!("give the new key with --new-key or SAOMA_NEW_MASTER_KEY"),
            };
            let count = saoma_server::rotate_master_key(&database, &old, &new).await?;
            match master_key_file(&database) {
                Some(file) if from_file => {
                    private_file::write(&file, &new)?;
                    println!("re-sealed {count} secrets; the new key is in {file}");
                }
                _ => println!("re-sealed {count} secrets; start the servers with the new SAOMA_MASTER_KEY"),
            }
            Ok(0)
        }
        AdminCommand::VerifyAudit { server, admin_token } => {
            let v = Client::new(&server.url, Credentials::Admin(admin_token)).verify_audit().await?;
            for b in &v.broken {
                let Some(chain) = b.chain else {
                    println!("BROKEN: {}", b.reason);
                    continue;
                };
                let or_null = |x: Option<String>| x.unwrap_or_else(|| "null".into());
                println!(
                    "BROKEN chain {chain} record {}: {} (audit row {}, {} {})",
                    or_null(b.chain_seq.map(|s| s.to_string())),
                    b.reason,
                    or_null(b.audit_seq.flatten().map(|s| s.to_string())),
                    b.action.clone().flatten().unwrap_or_else(|| "-".into()),
                    b.object_id.clone().flatten().unwrap_or_else(|| "-".into())
                );
            }
            match &v.checkpoint {
                Some(c) if c.valid != Some(false) => println!(
                    "checked against the signed checkpoint of {} ({} chains then, {} now)",
                    c.created_at,
                    or_null_i64(c.chains),
                    v.chains
                ),
                _ => println!("no valid signed checkpoint to check against"),
            }
            println!(
                "{} records checked; {}",
                v.records,
                if v.intact { "the audit log is intact" } else { "the audit log was tampered with" }
            );
            Ok(if v.intact { 0 } else { 1 })
        }
        AdminCommand::Desk(cmd) => desk::run(cmd).await,
        AdminCommand::Approve { merchant_id, server, admin_token } => {
            let m = Client::new(&server.url, Credentials::Admin(admin_token))
                .approve_merchant(&merchant_id)
                .await?;
            println!("{}", serde_json::to_string_pretty(&m)?);
            Ok(0)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await.map(|_| 0),
        Command::Demo { listen, data_dir } => demo::run(&listen, &data_dir).await.map(|_| 0),
        Command::Pos(args) => till::run(args).await,
        Command::Wallet(cmd) => wallet(cmd).await,
        Command::Admin(cmd) => admin(cmd).await,
        Command::VerifyReceipt(args) => verify::run(args).await,
        Command::Bench(args) => bench::run(args).await.map(|_| 0),
        Command::Openapi => {
            print!("{}", saoma_server::openapi_json());
            Ok(0)
        }
        Command::Qr(QrCommand::Decode(args)) => verify::decode_qr(args).await,
    }
}

fn main() {
    saoma_client::install_tls();
    let cli = Cli::parse();
    // The bench reads whole tables between runs on purpose: sqlx's slow-statement warnings
    // and notices would only bury its progress bars.
    let default_filter = if matches!(cli.command, Command::Bench(_)) { "warn,sqlx=error" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SAOMA_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("saoma: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("saoma: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// A number as JSON prints it, `null` when there is none.
fn or_null_i64(n: Option<i64>) -> String {
    n.map_or_else(|| "null".into(), |n| n.to_string())
}
