//! The till's offline queue: reversals and refunds the cashier asked for while the server
//! could not be reached, kept in a SQLite file beside the till's configuration and sent
//! again, in order, when the network returns. Each carries its idempotency key
//! (`out_trade_no`, `out_refund_no`), saved before the first try, so a request that did
//! reach the server is answered again, never done twice. Charges are never queued: a
//! customer is not charged while the till is offline.

use crate::{Client, ClientError};
use saoma_api as api;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;

/// What the cashier asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Queued {
    /// Reverse a sale by its order number (`POST /v1/payments/cancel`).
    Cancel { out_trade_no: String },
    /// Refund part or all of a payment.
    Refund { payment_id: String, refund: api::CreateRefundRequest },
}

/// One request in the queue.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: i64,
    pub request: Queued,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// How a replay went.
#[derive(Debug, Default, Clone)]
pub struct Replay {
    /// Sent and answered.
    pub done: usize,
    /// Answered with a refusal (kept in the log with the answer, not retried).
    pub refused: Vec<(Queued, String)>,
    /// Still waiting: the server could not be reached.
    pub waiting: usize,
}

/// Why the queue failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the till's queue file: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the till's queue holds a request it cannot read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The queue file.
#[derive(Clone)]
pub struct PosQueue {
    pool: SqlitePool,
}

impl PosQueue {
    /// Opens (or creates) the queue at `path`. Every write is on disk before it returns.
    pub async fn open(path: &str) -> Result<PosQueue, QueueError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, request TEXT NOT NULL, \
             attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, queued_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, request TEXT NOT NULL, outcome TEXT NOT NULL, \
             answered_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        Ok(PosQueue { pool })
    }

    /// Keeps a request to send when the network returns.
    pub async fn push(&self, request: &Queued) -> Result<i64, QueueError> {
        let r = sqlx::query("INSERT INTO queue (request, queued_at) VALUES ($1, $2)")
            .bind(serde_json::to_string(request)?)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(r.last_insert_rowid())
    }

    /// The requests still waiting, oldest first.
    pub async fn waiting(&self) -> Result<Vec<Entry>, QueueError> {
        let rows: Vec<(i64, String, i64, Option<String>)> =
            sqlx::query_as("SELECT seq, request, attempts, last_error FROM queue ORDER BY seq")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(seq, request, attempts, last_error)| {
                Ok(Entry { seq, request: serde_json::from_str(&request)?, attempts, last_error })
            })
            .collect()
    }

    /// Sends the waiting requests in order. Stops at the first that cannot reach the
    /// server (the order is kept: a refund never overtakes the reversal before it).
    pub async fn replay(&self, client: &Client) -> Result<Replay, QueueError> {
        let mut out = Replay::default();
        let waiting = self.waiting().await?;
        let total = waiting.len();
        for (i, entry) in waiting.into_iter().enumerate() {
            match send(client, &entry.request).await {
                Ok(answer) => {
                    self.settle(&entry, &answer).await?;
                    out.done += 1;
                }
                Err(e) if crate::pos::outcome_unknown(&e) => {
                    // Not reached, or a gateway or a busy server answered: try again later.
                    sqlx::query("UPDATE queue SET attempts = attempts + 1, last_error = $1 WHERE seq = $2")
                        .bind(e.to_string())
                        .bind(entry.seq)
                        .execute(&self.pool)
                        .await?;
                    out.waiting = total - i;
                    return Ok(out);
                }
                Err(e) => {
                    // A refusal is final (the sale was refunded already, the amount is too
                    // large...): keep it for the cashier to read, do not send it again.
                    let answer = e.to_string();
                    self.settle(&entry, &format!("refused: {answer}")).await?;
                    out.refused.push((entry.request, answer));
                }
            }
        }
        Ok(out)
    }

    async fn settle(&self, entry: &Entry, outcome: &str) -> Result<(), QueueError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO log (seq, request, outcome, answered_at) VALUES ($1, $2, $3, $4)")
            .bind(entry.seq)
            .bind(serde_json::to_string(&entry.request)?)
            .bind(outcome)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM queue WHERE seq = $1").bind(entry.seq).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Sends one request; the answer in a line for the log.
async fn send(client: &Client, request: &Queued) -> Result<String, ClientError> {
    match request {
        Queued::Cancel { out_trade_no } => {
            let p = client.cancel_by_trade_no(out_trade_no).await?;
            Ok(format!("{} {}", p.id, p.status))
        }
        Queued::Refund { payment_id, refund } => {
            let r = client.refund_with(payment_id, refund).await?;
            Ok(format!("{} {}", r.id, r.status))
        }
    }
}

/// What became of a request sent with [`send_or_queue`].
#[derive(Debug)]
pub enum Fate {
    /// The server answered: the answer in a line.
    Done(String),
    /// Kept in the queue: the server could not be reached, or older requests still wait.
    Queued,
    /// The server refused it (nothing queued).
    Refused(ClientError),
}

/// Sends a request now, or keeps it when the server cannot be reached. Whatever waits in
/// the queue goes first (reported in the first half of the answer), and while any of it
/// still waits the new request is queued behind it without being sent: requests reach the
/// server in the order they were asked.
pub async fn send_or_queue(
    client: &Client,
    queue: &PosQueue,
    request: Queued,
) -> Result<(Replay, Fate), QueueError> {
    let earlier = queue.replay(client).await?;
    if earlier.waiting > 0 {
        queue.push(&request).await?;
        return Ok((earlier, Fate::Queued));
    }
    let fate = match send(client, &request).await {
        Ok(answer) => Fate::Done(answer),
        Err(e) if crate::pos::outcome_unknown(&e) => {
            queue.push(&request).await?;
            Fate::Queued
        }
        Err(e) => Fate::Refused(e),
    };
    Ok((earlier, fate))
}
