//! The POS engine: charge a scanned code and always end knowing the outcome.
//!
//! The POS is the one that retries. It keeps its `out_trade_no` before sending; when an
//! answer is lost it queries by that number, and when the outcome stays unknown (or the
//! customer never confirms) it cancels by that number, which also stops a charge that is
//! still on its way. So a sale is paid once or not at all.
//!
//! A scan that fails the code's own checks (length, prefix, check digit) is refused
//! before anything is sent: the cashier scans again. With a queue
//! ([`crate::queue::PosQueue`]), a reversal that cannot reach the server is kept and sent
//! when the network returns; charges are never taken offline: a charge that cannot reach
//! the server at all ends at once as [`Outcome::Offline`], not charged.

use crate::queue::{PosQueue, Queued};
use crate::{Client, ClientError};
use saoma_api as api;
use std::time::Duration;

/// How a sale ended.
#[derive(Debug)]
pub enum Outcome {
    /// Paid.
    Paid(api::Payment),
    /// Declined, with the failure code (`insufficient_funds`, ...).
    Declined { code: String, payment_id: Option<String> },
    /// Not charged: closed or reversed.
    NotCharged(Option<api::Payment>),
    /// The scan is not a payment code (a misread): nothing was sent; scan again.
    Misread(String),
    /// The server could not be reached to learn the outcome; the reversal of the order is
    /// queued and goes out when the network returns, so the customer is not charged.
    ReversalQueued { out_trade_no: String },
    /// The server could not be reached at all (no connection could be made), so the charge
    /// was never sent and the customer was not charged. Charges are never taken offline.
    Offline,
}

/// True when a request never left the till: no connection could be made (refused, no
/// route, no DNS answer), so the server cannot have done it.
pub fn never_sent(e: &ClientError) -> bool {
    matches!(e, ClientError::Transport(t) if t.is_connect())
}

/// True when an error leaves the outcome of a request unknown: the answer was lost, or a
/// gateway or an overloaded server answered in its place (429, 5xx), so the request may
/// have been done.
pub fn outcome_unknown(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(_) => true,
        ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => {
            *status == 429 || *status >= 500
        }
    }
}

/// Refuses a scan that cannot be a payment code, before any network call.
pub fn check_scan(code: &str) -> Result<(), String> {
    saoma_core::paycode::parse(code.trim()).map(|_| ()).map_err(|e| e.to_string())
}

/// Timings of the engine.
#[derive(Debug, Clone)]
pub struct PosSettings {
    /// Queries after a lost answer before giving up and cancelling.
    pub query_attempts: u32,
    /// Pause between those queries.
    pub query_pause: Duration,
    /// How long to wait for the customer's PIN confirmation.
    pub confirm_wait: Duration,
}

impl Default for PosSettings {
    fn default() -> Self {
        PosSettings {
            query_attempts: 3,
            query_pause: Duration::from_secs(2),
            confirm_wait: Duration::from_secs(60),
        }
    }
}

fn settled(p: api::Payment) -> Option<Outcome> {
    match p.status.as_str() {
        "succeeded" => Some(Outcome::Paid(p)),
        "failed" => Some(Outcome::Declined {
            code: p.failure_code.clone().unwrap_or_default(),
            payment_id: Some(p.id),
        }),
        "closed" | "refunded" => Some(Outcome::NotCharged(Some(p))),
        _ => None,
    }
}

/// Cancels by order number until the server answers.
async fn reverse(
    client: &Client,
    out_trade_no: &str,
    settings: &PosSettings,
) -> Result<Outcome, ClientError> {
    let mut last = None;
    for _ in 0..settings.query_attempts.max(1) {
        match client.cancel_by_trade_no(out_trade_no).await {
            Ok(p) => return Ok(Outcome::NotCharged(Some(p))),
            Err(e) if outcome_unknown(&e) => {
                last = Some(e);
                tokio::time::sleep(settings.query_pause).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(ClientError::Unexpected { status: 0, body: "cancel did not get through".into() }))
}

/// Charges a scanned code. When the outcome cannot be learnt nor the sale reversed, this
/// is an error: see [`charge_queued`] for a till with a queue.
pub async fn charge(
    client: &Client,
    req: &api::CreatePaymentRequest,
    settings: &PosSettings,
) -> Result<Outcome, ClientError> {
    charge_with(client, None, req, settings).await
}

/// Charges a scanned code; a reversal that cannot reach the server is queued.
pub async fn charge_queued(
    client: &Client,
    queue: &PosQueue,
    req: &api::CreatePaymentRequest,
    settings: &PosSettings,
) -> Result<Outcome, ClientError> {
    charge_with(client, Some(queue), req, settings).await
}

/// Reverses, or, with a queue and no network, queues the reversal.
async fn reverse_or_queue(
    client: &Client,
    queue: Option<&PosQueue>,
    out_trade_no: &str,
    settings: &PosSettings,
) -> Result<Outcome, ClientError> {
    match (reverse(client, out_trade_no, settings).await, queue) {
        (Err(e), Some(q)) if outcome_unknown(&e) => {
            let request = Queued::Cancel { out_trade_no: out_trade_no.to_string() };
            q.push(&request).await.map_err(|qe| ClientError::Unexpected {
                status: 0,
                body: format!("the server is unreachable ({e}) and the reversal could not be queued: {qe}"),
            })?;
            Ok(Outcome::ReversalQueued { out_trade_no: out_trade_no.to_string() })
        }
        (other, _) => other,
    }
}

async fn charge_with(
    client: &Client,
    queue: Option<&PosQueue>,
    req: &api::CreatePaymentRequest,
    settings: &PosSettings,
) -> Result<Outcome, ClientError> {
    if let Some(code) = &req.payment_code
        && let Err(why) = check_scan(code)
    {
        return Ok(Outcome::Misread(why));
    }
    let payment = match client.create_payment(req).await {
        Ok(p) => p,
        Err(ClientError::Api { status: 402, error, .. }) => {
            return Ok(Outcome::Declined { code: error.code, payment_id: error.payment_id });
        }
        Err(ClientError::Api { error, .. }) if error.code == "payment_closed" => {
            return Ok(Outcome::NotCharged(None));
        }
        // Nothing reached the server: nothing to ask about or reverse.
        Err(e) if never_sent(&e) => return Ok(Outcome::Offline),
        Err(e) if outcome_unknown(&e) => {
            // The answer was lost (or a gateway's error stood in for it): ask what
            // happened, then reverse if still unknown.
            let mut found = None;
            for _ in 0..settings.query_attempts {
                tokio::time::sleep(settings.query_pause).await;
                match client.payment_by_trade_no(&req.out_trade_no, 0).await {
                    Ok(p) => {
                        found = Some(p);
                        break;
                    }
                    Err(ClientError::Api { status: 404, .. }) => continue,
                    Err(e) if outcome_unknown(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
            match found {
                Some(p) => p,
                None => return reverse_or_queue(client, queue, &req.out_trade_no, settings).await,
            }
        }
        Err(e) => return Err(e),
    };
    if let Some(done) = settled(payment.clone()) {
        return Ok(done);
    }
    // Pending: the customer confirms with the PIN on the phone. Long-poll, then give up.
    let deadline = tokio::time::Instant::now() + settings.confirm_wait;
    while tokio::time::Instant::now() < deadline {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).as_secs().clamp(1, 30);
        match client.payment(&payment.id, left).await {
            Ok(p) => {
                if let Some(done) = settled(p) {
                    return Ok(done);
                }
            }
            Err(e) if outcome_unknown(&e) => tokio::time::sleep(settings.query_pause).await,
            Err(e) => return Err(e),
        }
    }
    match reverse_or_queue(client, queue, &req.out_trade_no, settings).await? {
        // The confirmation may have landed just before the reversal: then it was refunded.
        Outcome::NotCharged(Some(p)) => Ok(settled(p.clone()).unwrap_or(Outcome::NotCharged(Some(p)))),
        other => Ok(other),
    }
}
