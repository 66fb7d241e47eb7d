//! The operator's desk from the command line: review decisions, wallet freezes and
//! operators. Each prints the server's answer as JSON; the token's role decides what it
//! may do.

use saoma_client::{Client, Credentials};

/// Where the server is and who is asking.
#[derive(clap::Args)]
pub struct Operator {
    #[arg(long, env = "SAOMA_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "SAOMA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

#[derive(clap::Subcommand)]
pub enum DeskCommand {
    /// Rejects a merchant's application, with the reason the merchant will see.
    Reject {
        merchant_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Suspends a merchant: it takes no payments until reinstated.
    Suspend {
        merchant_id: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Reinstates a suspended merchant.
    Reinstate {
        merchant_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Freezes a customer's wallet: it can no longer pay or transfer.
    Freeze {
        customer_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Unfreezes a customer's wallet.
    Unfreeze {
        customer_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        op: Operator,
    },
    /// Adds an operator (admin, risk_officer, support or auditor); prints its token once.
    AddOperator {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[command(flatten)]
        op: Operator,
    },
}

fn client(op: Operator) -> Client {
    Client::new(&op.url, Credentials::Admin(op.admin_token))
}

/// Runs one desk command; exit 0, or 1 with the server's refusal on stderr.
pub async fn run(cmd: DeskCommand) -> anyhow::Result<i32> {
    let answer = match cmd {
        DeskCommand::Reject { merchant_id, reason, op } => {
            client(op).reject_merchant(&merchant_id, &reason).await.map(|m| serde_json::json!(m))
        }
        DeskCommand::Suspend { merchant_id, op } => {
            client(op).suspend_merchant(&merchant_id).await.map(|m| serde_json::json!(m))
        }
        DeskCommand::Reinstate { merchant_id, reason, op } => {
            client(op).reinstate_merchant(&merchant_id, &reason).await.map(|m| serde_json::json!(m))
        }
        DeskCommand::Freeze { customer_id, reason, op } => {
            client(op).freeze(&customer_id, &reason).await.map(|c| serde_json::json!(c))
        }
        DeskCommand::Unfreeze { customer_id, reason, op } => {
            client(op).unfreeze(&customer_id, &reason).await.map(|c| serde_json::json!(c))
        }
        DeskCommand::AddOperator { name, role, op } => {
            client(op).create_operator(&name, &role).await.map(|o| serde_json::json!(o))
        }
    };
    match answer {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Err(e) => {
            eprintln!("saoma: {e}");
            Ok(1)
        }
    }
}
