//! The one service that charges a customer's wallet, for every path that moves a
//! customer's money to someone else: a payment code scanned at a till, a static or
//! dynamic merchant code paid in the wallet, a PIN confirmation, a transfer.
//!
//! Inside the caller's transaction it locks the payer's wallet, reads every fact the
//! decision needs, asks `saoma_core::payment::decide_charge`, and then writes in one
//! place either the charge (ledger entry, payment state, receipt, outbox event, audit
//! record) or the decline (risk decision, and the failed payment when the attempt owns
//! it). Nothing is decided from a store error: the SQL overdraft guard is only a backstop
//! whose firing is a bug.

use crate::audit::Audit;
use crate::payments::{OpError, customer_ref, emit};
use crate::receipts::Presigned;
use crate::risk;
use crate::util::new_id;
use crate::work::{Effect, Work};
use crate::{ApiError, AppState, views};
use chrono::{Duration, Utc};
use saoma_api::ErrorCode;
use saoma_core::ids::prefix;
use saoma_core::ledger::{self, JournalEntry};
use saoma_core::money::Money;
use saoma_core::payment::{self, ChargeDecision, ChargeFacts, Payment, PaymentMode, PinProof};
use saoma_core::risk::{Decline, Rules};
use saoma_store::{AuditRecord, ChargeHistory, CustomerRow, MerchantRow, StoreError, TransferRow};
use serde_json::json;

/// How far back the daily limit looks.
const DAILY_WINDOW_HOURS: i64 = 24;
/// The longest a payment can stay pending before it is paid (`expires_in` ≤ 86400 s).
const PENDING_HOURS_MAX: i64 = 24;

/// Who pays, how much, and what proves they agreed.
pub struct Charge<'a> {
    /// The payer as stored now, read inside the charge's transaction.
    pub payer: &'a CustomerRow,
    pub amount: Money,
    pub pin: PinProof,
    /// Counts this attempt against the wallet's velocity rule (transfers are guarded by
    /// the PIN instead).
    pub count_velocity: bool,
    pub rules: &'a Rules,
    /// Who asked, for the audit log.
    pub actor: &'a str,
}

/// What a declined attempt does to its payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDecline {
    /// The attempt is the payment (a till's scan, a PIN confirmation): it fails with the
    /// decline's code, and asking again answers the same decline.
    FailPayment,
    /// The payment is the merchant's and stays payable (a dynamic code the customer may
    /// pay after a top-up), or there is nothing to keep (a static code's attempt).
    KeepPayment,
}

/// Whom the money goes to.
pub enum Payee<'a> {
    /// A merchant's payment; `stored`: the payment row exists already; `receipt`: its
    /// receipt signed before the caller's transaction began, if it was (else [`charge`]
    /// signs it before it locks the wallet).
    Merchant {
        payment: &'a mut Payment,
        merchant: &'a MerchantRow,
        stored: bool,
        on_decline: OnDecline,
        receipt: Option<Box<Presigned>>,
    },
    /// Another customer.
    Customer { transfer: &'a TransferRow },
}

/// How a charge ended; everything it wrote is in the caller's transaction.
#[derive(Debug)]
pub enum Outcome {
    /// The money moved.
    Charged,
    /// Over the password-free limit without the PIN. A till's scan now waits, pending,
    /// for the customer to confirm in the wallet; any other request is refused as it is.
    NeedsPin,
    /// Refused, and the refusal is recorded.
    Declined(Decline),
}

/// Decides and performs a charge inside `work`. The caller commits whatever the outcome.
pub async fn charge(
    state: &AppState,
    work: &mut Work,
    c: &Charge<'_>,
    mut payee: Payee<'_>,
    now: &str,
) -> Result<Outcome, OpError> {
    // Signed before the wallet, the merchant's ledger rows and the audit head are locked.
    let receipt = match &mut payee {
        Payee::Merchant { payment, merchant, receipt, .. } => match receipt.take() {
            Some(r) => Some(r),
            None => crate::receipts::presign(state, payment, &merchant.name, now).await?,
        },
        Payee::Customer { .. } => None,
    };
    let (available, paid_out_24h, recent_attempts) = observe(state, work, c, &payee).await?;
    let facts = ChargeFacts {
        amount: c.amount,
        frozen: c.payer.frozen != 0,
        tier: &c.payer.tier,
        recent_attempts,
        available,
        paid_out_24h,
        pin: c.pin,
    };
    match payment::decide_charge(c.rules, &facts) {
        ChargeDecision::Charge => {
            match &mut payee {
                Payee::Merchant { payment, merchant, stored, .. } => {
                    let to = PaidMerchant { merchant, stored: *stored, receipt };
                    pay_merchant(state, work, c, payment, to, now).await?
                }
                Payee::Customer { transfer } => pay_customer(work, c, transfer, now).await?,
            }
            Ok(Outcome::Charged)
        }
        ChargeDecision::NeedsPin => {
            if let Payee::Merchant { payment, merchant, stored: false, .. } = payee
                && payment.mode == PaymentMode::Cpm
            {
                payment.needs_confirm = true;
                payment.customer_id = Some(c.payer.id.clone());
                payment.customer_ref = Some(customer_ref(state, &merchant.id, &c.payer.id));
                work.insert_payment(payment).await?;
            }
            Ok(Outcome::NeedsPin)
        }
        ChargeDecision::Decline(d) => {
            let payment = match payee {
                Payee::Merchant { payment, stored, on_decline, .. } => {
                    payment.customer_id.get_or_insert_with(|| c.payer.id.clone());
                    Some((payment, stored, on_decline))
                }
                Payee::Customer { .. } => None,
            };
            decline(work, payment, &d, (&c.payer.id, c.rules), now).await?;
            Ok(Outcome::Declined(d))
        }
    }
}

/// Records a decline in `work`: the risk decision (`subject`: whom the rule looked at)
/// and, when the attempt owns its payment, the payment as failed. Used by [`charge`] and
/// by the till's checks that come before a payer is known (bad codes, a blocked till).
pub async fn decline(
    work: &mut Work,
    payment: Option<(&mut Payment, bool, OnDecline)>,
    d: &Decline,
    (subject, rules): (&str, &Rules),
    now: &str,
) -> Result<(), OpError> {
    let mut payment_id = None;
    if let Some((p, stored, on_decline)) = payment {
        if on_decline == OnDecline::FailPayment {
            p.decline(d.code).map_err(|e| ApiError::new(ErrorCode::PaymentNotPending, e.to_string()))?;
            if stored {
                work.update_payment(p).await?;
            } else {
                work.insert_payment(p).await?;
            }
            work.on_commit(Effect::PaymentFailed);
        }
        // A payment the customer never saw stored is not named: it does not exist.
        if stored || on_decline == OnDecline::FailPayment {
            payment_id = Some(p.id.clone());
        }
    }
    work.insert_risk_decision(&risk::decision(d, subject, payment_id.as_deref(), rules, now)).await?;
    Ok(())
}

/// Reads what a charge's decision counts, with the payer's wallet (and a payee's) locked:
/// the balance, what was paid out in the last 24 hours, the attempts of the last minute.
async fn observe(
    state: &AppState,
    work: &mut Work,
    c: &Charge<'_>,
    payee: &Payee<'_>,
) -> Result<(i64, i64, Option<i64>), StoreError> {
    let currency = c.amount.currency();
    let (deciding_id, locked) = match payee {
        Payee::Merchant { payment, .. } => (payment.id.as_str(), vec![c.payer.id.as_str()]),
        Payee::Customer { transfer } => {
            (transfer.id.as_str(), vec![c.payer.id.as_str(), transfer.to_customer_id.as_str()])
        }
    };
    let t = Utc::now();
    let ago = |hours: i64| crate::util::rfc3339(t - Duration::hours(hours));
    let (since, created_since) = (ago(DAILY_WINDOW_HOURS), ago(DAILY_WINDOW_HOURS + PENDING_HOURS_MAX));
    let attempts_since = (state.config.risk_velocity && c.count_velocity)
        .then(|| crate::util::rfc3339(t - Duration::seconds(60)));
    let history = ChargeHistory {
        customer_id: &c.payer.id,
        currency: currency.code(),
        since: &since,
        created_since: &created_since,
        except_id: deciding_id,
        attempts_since: attempts_since.as_deref(),
    };
    let (balances, (paid_out_24h, recent_attempts)) =
        work.lock_wallets_and_history(&locked, currency, &history).await?;
    Ok((balances[0], paid_out_24h, recent_attempts))
}

/// What a charge locks after its posting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Only its audit chain's head (the posting's statement locks it on PostgreSQL, reads
    /// it on SQLite).
    Audit,
    /// The products it sells, then the audit chain's head.
    Stock,
}

/// What a charge's entry is posted for.
enum PostedFor<'a> {
    /// A merchant's payment, saved in the posting's round trip (`stored`: its row exists),
    /// and what the charge locks after the posting.
    Payment { payment: &'a Payment, stored: bool, next: Next },
    /// A transfer between customers, recorded before.
    Transfer(&'a str),
}

/// Posts an entry the decision already allowed, saving the payment it is for in the same
/// round trip; an overdraft here is a bug.
async fn post(
    work: &mut Work,
    posted_for: PostedFor<'_>,
    entry: &JournalEntry,
    now: &str,
) -> Result<(), StoreError> {
    let id = new_id(prefix::ENTRY);
    let posted = match posted_for {
        PostedFor::Payment { payment, stored, next } => {
            let then_audit = next == Next::Audit;
            work.save_payment_and_post((payment, stored), &id, entry, now, then_audit).await
        }
        PostedFor::Transfer(t) => work.post_entry_then_audit(&id, "transfer", t, entry, now).await,
    };
    match posted {
        Err(StoreError::InsufficientFunds(account)) => Err(StoreError::Corrupt(format!(
            "invariant broken: {account} would be overdrawn after its balance was checked under lock"
        ))),
        other => other,
    }
}

/// The merchant a charge pays, whether its payment is stored, and its presigned receipt.
struct PaidMerchant<'a> {
    merchant: &'a MerchantRow,
    stored: bool,
    receipt: Option<Box<Presigned>>,
}

async fn pay_merchant(
    state: &AppState,
    work: &mut Work,
    c: &Charge<'_>,
    p: &mut Payment,
    PaidMerchant { merchant, stored, receipt }: PaidMerchant<'_>,
    now: &str,
) -> Result<(), OpError> {
    let fee_bps = u32::try_from(merchant.fee_bps)
        .map_err(|_| StoreError::Corrupt(format!("merchant {} fee_bps {}", merchant.id, merchant.fee_bps)))?;
    let fee = payment::fee_for(c.amount, fee_bps);
    let entry = ledger::payment_entry(&c.payer.id, &merchant.id, c.amount, fee)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let before = p.status();
    p.charge(&c.payer.id, fee, now)
        .map_err(|e| ApiError::new(ErrorCode::PaymentNotPending, e.to_string()))?;
    p.customer_ref = Some(customer_ref(state, &merchant.id, &c.payer.id));
    // The payment row is saved first in the posting's round trip: the merchant's ledger
    // rows, locked by the posting, are then held only for the audit head and the commit
    // (what the hot merchant queues on).
    let next = if crate::stock::sells(p)? { Next::Stock } else { Next::Audit };
    post(work, PostedFor::Payment { payment: p, stored, next }, &entry, now).await?;
    crate::stock::take(work, p, c.actor, now).await?;
    crate::receipts::issue(&state.keys.sealer, work, p, &merchant.name, None, now, receipt).await?;
    let data = serde_json::to_value(views::payment(p, None)?).map_err(ApiError::internal)?;
    let scope = (Some(p.merchant_id.as_str()), p.terminal_id.as_deref());
    emit(work, "payment.succeeded", scope, Some(&c.payer.id), data, now).await?;
    let audit = AuditRecord {
        actor: c.actor,
        action: "payment.charge",
        object_id: &p.id,
        // What the risk rules looked at, so the approval can be explained afterwards.
        detail: json!({"amount": p.amount.amount_minor(), "currency": p.amount.currency().code(),
            "fee": fee.amount_minor(), "before": {"status": before.as_str()},
            "after": {"status": p.status().as_str()},
            "risk": {"rules_version": c.rules.version, "tier": c.payer.tier}}),
    };
    work.audit(&audit, now).await?;
    work.on_commit(Effect::PaymentSucceeded);
    Ok(())
}

async fn pay_customer(work: &mut Work, c: &Charge<'_>, t: &TransferRow, now: &str) -> Result<(), OpError> {
    work.insert_transfer(t).await?;
    let entry = ledger::transfer_entry(&t.from_customer_id, &t.to_customer_id, c.amount)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    post(work, PostedFor::Transfer(&t.id), &entry, now).await?;
    let data = serde_json::to_value(views::transfer(t)).map_err(ApiError::internal)?;
    emit(work, "transfer.succeeded", (None, None), Some(&t.from_customer_id), data, now).await?;
    let audit = AuditRecord {
        actor: c.actor,
        action: "transfer.create",
        object_id: &t.id,
        detail: json!({"amount": t.amount, "risk": {"rules_version": c.rules.version, "tier": c.payer.tier}}),
    };
    work.audit(&audit, now).await?;
    Ok(())
}
