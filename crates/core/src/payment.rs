//! Payment and refund rules: the status state machine, fees, refund limits.
//!
//! `pending` → `succeeded` | `failed` | `closed`; `succeeded` → `refunded` once the whole
//! amount is refunded. `failed`, `closed` and `refunded` are terminal. Nothing here
//! touches storage or the clock.

use crate::money::{Money, MoneyError, basis_points_half_up};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Closed,
    Refunded,
}

impl PaymentStatus {
    /// The wire and database name.
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Closed => "closed",
            PaymentStatus::Refunded => "refunded",
        }
    }

    /// Parses [`PaymentStatus::as_str`].
    pub fn parse(s: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Every status.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Closed,
        PaymentStatus::Refunded,
    ];

    /// True when no event can change the status any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, PaymentStatus::Failed | PaymentStatus::Closed | PaymentStatus::Refunded)
    }
}

/// What happens to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The customer's money moved.
    Charge,
    /// The charge was declined.
    Decline,
    /// Closed before paying: cancelled by the POS, or expired.
    Close,
    /// A refund brought the refunded total to the full amount.
    RefundInFull,
    /// A refund left part of the amount unrefunded.
    RefundInPart,
}

/// Why a transition is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("payment is {0}, cannot {1}")]
    NotAllowed(&'static str, &'static str),
}

/// The status after `event`, or why the event does not apply.
pub fn transition(from: PaymentStatus, event: PaymentEvent) -> Result<PaymentStatus, TransitionError> {
    use PaymentEvent as E;
    use PaymentStatus as S;
    let to = match (from, event) {
        (S::Pending, E::Charge) => S::Succeeded,
        (S::Pending, E::Decline) => S::Failed,
        (S::Pending, E::Close) => S::Closed,
        (S::Succeeded, E::RefundInFull) => S::Refunded,
        (S::Succeeded, E::RefundInPart) => S::Succeeded,
        (from, event) => {
            let verb = match event {
                E::Charge => "charge",
                E::Decline => "decline",
                E::Close => "close",
                E::RefundInFull | E::RefundInPart => "refund",
            };
            return Err(TransitionError::NotAllowed(from.as_str(), verb));
        }
    };
    Ok(to)
}

/// How a payment was presented: the customer's code scanned by the till (`cpm`), or the
/// merchant's code scanned by the customer (`mpm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMode {
    Cpm,
    Mpm,
}

impl PaymentMode {
    /// The wire and database name.
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentMode::Cpm => "cpm",
            PaymentMode::Mpm => "mpm",
        }
    }

    /// Parses [`PaymentMode::as_str`].
    pub fn parse(s: &str) -> Option<PaymentMode> {
        [PaymentMode::Cpm, PaymentMode::Mpm].into_iter().find(|m| m.as_str() == s)
    }
}

/// A payment as the rules see it. Its status changes only through [`transition`], by the
/// methods below; everything else is plain data the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    pub out_trade_no: String,
    /// What the customer pays (zero only for an order number closed before creation).
    pub amount: Money,
    pub subject: String,
    /// The order's lines as JSON, as the merchant sent them.
    pub items: String,
    pub mode: PaymentMode,
    status: PaymentStatus,
    failure_code: Option<String>,
    pub refunded: Money,
    pub fee: Money,
    pub fee_returned: Money,
    pub customer_id: Option<String>,
    /// The customer's opaque handle for this merchant.
    pub customer_ref: Option<String>,
    /// A digest of the creating request; `None` marks an order number closed before any
    /// payment was made with it.
    pub fingerprint: Option<String>,
    /// The reference a dynamic merchant code carries.
    pub qr_ref: Option<String>,
    /// The customer must confirm with the PIN in the wallet.
    pub needs_confirm: bool,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub expires_at: Option<String>,
}

/// What a new payment is for, before anything has happened to it.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    pub out_trade_no: String,
    pub amount: Money,
    pub subject: String,
    pub items: String,
    pub mode: PaymentMode,
    pub fingerprint: Option<String>,
    pub created_at: String,
}

impl Payment {
    /// A new pending payment for an order.
    pub fn pending(o: Order) -> Payment {
        let zero = Money::zero(o.amount.currency());
        Payment {
            id: o.id,
            merchant_id: o.merchant_id,
            terminal_id: o.terminal_id,
            out_trade_no: o.out_trade_no,
            amount: o.amount,
            subject: o.subject,
            items: o.items,
            mode: o.mode,
            status: PaymentStatus::Pending,
            failure_code: None,
            refunded: zero,
            fee: zero,
            fee_returned: zero,
            customer_id: None,
            customer_ref: None,
            fingerprint: o.fingerprint,
            qr_ref: None,
            needs_confirm: false,
            created_at: o.created_at,
            paid_at: None,
            expires_at: None,
        }
    }

    /// A payment as it was stored: the one way to set a status other than by an event.
    /// Only the store's row conversion calls it.
    pub fn restored(mut self, status: PaymentStatus, failure_code: Option<String>) -> Payment {
        self.status = status;
        self.failure_code = failure_code;
        self
    }

    /// Where the payment stands.
    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    /// Why it failed, when it did.
    pub fn failure_code(&self) -> Option<&str> {
        self.failure_code.as_deref()
    }

    /// The facts a refund decision needs.
    pub fn refundable(&self) -> RefundablePayment {
        RefundablePayment {
            status: self.status,
            amount: self.amount,
            fee: self.fee,
            refunded: self.refunded,
            fee_returned: self.fee_returned,
        }
    }

    /// The customer's money moved: pending → succeeded.
    pub fn charge(&mut self, customer_id: &str, fee: Money, paid_at: &str) -> Result<(), TransitionError> {
        assert_eq!(fee.currency(), self.amount.currency(), "a fee is in the payment's currency");
        assert!(fee.amount_minor() <= self.amount.amount_minor(), "a fee never exceeds its payment");
        self.status = transition(self.status, PaymentEvent::Charge)?;
        self.fee = fee;
        self.customer_id = Some(customer_id.to_string());
        self.needs_confirm = false;
        self.paid_at = Some(paid_at.to_string());
        Ok(())
    }

    /// The charge was declined: pending → failed, with the failure code.
    pub fn decline(&mut self, failure_code: &str) -> Result<(), TransitionError> {
        self.status = transition(self.status, PaymentEvent::Decline)?;
        self.failure_code = Some(failure_code.to_string());
        self.needs_confirm = false;
        Ok(())
    }

    /// Closed before paying (cancelled or expired): pending → closed.
    pub fn close(&mut self) -> Result<(), TransitionError> {
        self.status = transition(self.status, PaymentEvent::Close)?;
        self.needs_confirm = false;
        Ok(())
    }

    /// Applies a refund decided by [`decide_refund`] on this payment's facts.
    pub fn apply_refund(&mut self, d: &RefundDecision) -> Result<(), TransitionError> {
        let event = if d.status_after == PaymentStatus::Refunded {
            PaymentEvent::RefundInFull
        } else {
            PaymentEvent::RefundInPart
        };
        self.status = transition(self.status, event)?;
        assert_eq!(self.status, d.status_after, "a refund decision agrees with the state machine");
        assert!(
            d.refunded_after.amount_minor() <= self.amount.amount_minor(),
            "refunds never exceed the payment"
        );
        self.refunded = d.refunded_after;
        self.fee_returned = d.fee_returned_after;
        Ok(())
    }
}

/// How a charge proves the customer agreed, when the amount is over the password-free
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProof {
    /// The PIN was checked before the charge.
    Verified,
    /// No PIN came with the request.
    Absent,
}

/// Everything a charge's decision looks at, read inside the charge's transaction with the
/// payer's wallet locked.
#[derive(Debug, Clone, Copy)]
pub struct ChargeFacts<'a> {
    pub amount: Money,
    pub frozen: bool,
    pub tier: &'a str,
    /// Payment attempts of the wallet in the last minute; `None`: not counted.
    pub recent_attempts: Option<i64>,
    /// The wallet's balance in the payment's currency.
    pub available: i64,
    /// What the wallet paid out in the last 24 hours in this currency, before this charge.
    pub paid_out_24h: i64,
    pub pin: PinProof,
}

/// What to do with a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeDecision {
    /// Move the money.
    Charge,
    /// Over the password-free limit without the PIN: the customer must give it first.
    NeedsPin,
    /// Refused, with the rule that refused it.
    Decline(crate::risk::Decline),
}

/// Decides a charge of a customer's wallet: frozen, per-payment limit, velocity, the PIN
/// above the password-free limit, the balance (no overdraft), then the daily limit. The
/// one place the order of these checks is written.
pub fn decide_charge(rules: &crate::risk::Rules, f: &ChargeFacts<'_>) -> ChargeDecision {
    use crate::risk::Decline;
    let (amount, currency) = (f.amount.amount_minor(), f.amount.currency());
    if let Err(d) = rules.check_wallet(f.frozen, f.tier, amount, currency, f.recent_attempts) {
        return ChargeDecision::Decline(d);
    }
    if f.pin == PinProof::Absent && rules.needs_pin(amount, currency) {
        return ChargeDecision::NeedsPin;
    }
    if f.available < amount {
        return ChargeDecision::Decline(Decline::new("insufficient_funds", "balance", f.available, amount));
    }
    if let Err(d) = rules.check_daily(f.tier, f.paid_out_24h.saturating_add(amount), currency) {
        return ChargeDecision::Decline(d);
    }
    ChargeDecision::Charge
}

/// The fee on a payment: amount × `fee_bps` / 10000, rounded half-up to the minor unit.
pub fn fee_for(amount: Money, fee_bps: u32) -> Money {
    Money::new(basis_points_half_up(amount.amount_minor(), fee_bps), amount.currency())
}

/// Why a refund is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("payment is {0}, only a succeeded payment can be refunded")]
    NotRefundable(&'static str),
    #[error("refund of {requested} exceeds the {remaining} left to refund")]
    ExceedsPayment { requested: i64, remaining: i64 },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// What a refund does to its payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDecision {
    /// The part of the fee given back with this refund.
    pub fee_returned: Money,
    /// The payment's status afterwards.
    pub status_after: PaymentStatus,
    /// The payment's refunded total afterwards.
    pub refunded_after: Money,
    /// The payment's returned-fee total afterwards.
    pub fee_returned_after: Money,
}

/// The facts of a payment that a refund decision needs.
#[derive(Debug, Clone, Copy)]
pub struct RefundablePayment {
    pub status: PaymentStatus,
    pub amount: Money,
    pub fee: Money,
    pub refunded: Money,
    pub fee_returned: Money,
}

/// Decides a refund of `amount`. The fee goes back pro rata to the refunded total, computed
/// cumulatively so the returned fees add up to exactly the fee when all is refunded and
/// never exceed it.
pub fn decide_refund(p: RefundablePayment, amount: Money) -> Result<RefundDecision, RefundError> {
    if p.status != PaymentStatus::Succeeded {
        return Err(RefundError::NotRefundable(p.status.as_str()));
    }
    let remaining = p.amount.checked_sub(p.refunded)?;
    if amount.amount_minor() > remaining.amount_minor() || amount.currency() != p.amount.currency() {
        return Err(RefundError::ExceedsPayment {
            requested: amount.amount_minor(),
            remaining: remaining.amount_minor(),
        });
    }
    let refunded_after = p.refunded.checked_add(amount)?;
    // Fee due back on the cumulative refunded total, floored; the last refund takes the rest.
    let cumulative_fee = if refunded_after == p.amount {
        p.fee.amount_minor()
    } else {
        let num = i128::from(p.fee.amount_minor()) * i128::from(refunded_after.amount_minor());
        i64::try_from(num / i128::from(p.amount.amount_minor())).map_err(|_| MoneyError::Overflow)?
    };
    let fee_returned_after = Money::new(cumulative_fee.max(p.fee_returned.amount_minor()), p.fee.currency());
    let fee_returned = fee_returned_after.checked_sub(p.fee_returned)?;
    let event =
        if refunded_after == p.amount { PaymentEvent::RefundInFull } else { PaymentEvent::RefundInPart };
    let status_after =
        transition(p.status, event).map_err(|_| RefundError::NotRefundable(p.status.as_str()))?;
    Ok(RefundDecision { fee_returned, status_after, refunded_after, fee_returned_after })
}

/// Checks a merchant's own order number: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_out_trade_no(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn paid(amount: i64, fee: i64) -> RefundablePayment {
        let c = Currency::CNY;
        RefundablePayment {
            status: PaymentStatus::Succeeded,
            amount: Money::new(amount, c),
            fee: Money::new(fee, c),
            refunded: Money::zero(c),
            fee_returned: Money::zero(c),
        }
    }

    #[test]
    fn terminal_states_accept_no_event() {
        for s in PaymentStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for e in
                [PaymentEvent::Charge, PaymentEvent::Decline, PaymentEvent::Close, PaymentEvent::RefundInFull]
            {
                assert!(transition(s, e).is_err(), "{s:?} accepted {e:?}");
            }
        }
    }

    #[test]
    fn partial_then_full_refund_returns_the_whole_fee() {
        let mut p = paid(1000, 7);
        let d1 = decide_refund(p, Money::new(333, Currency::CNY)).unwrap();
        assert_eq!(d1.status_after, PaymentStatus::Succeeded);
        assert_eq!(d1.fee_returned.amount_minor(), 2); // floor(7 × 333 / 1000)
        p.refunded = d1.refunded_after;
        p.fee_returned = d1.fee_returned_after;
        let d2 = decide_refund(p, Money::new(667, Currency::CNY)).unwrap();
        assert_eq!(d2.status_after, PaymentStatus::Refunded);
        assert_eq!(d2.fee_returned_after.amount_minor(), 7);
        assert!(matches!(
            decide_refund(p, Money::new(668, Currency::CNY)),
            Err(RefundError::ExceedsPayment { .. })
        ));
    }

    fn facts(amount: i64, available: i64) -> ChargeFacts<'static> {
        ChargeFacts {
            amount: Money::new(amount, Currency::CNY),
            frozen: false,
            tier: "standard",
            recent_attempts: Some(0),
            available,
            paid_out_24h: 0,
            pin: PinProof::Absent,
        }
    }

    #[test]
    fn a_charge_is_decided_in_one_order_of_checks() {
        let rules = crate::risk::Rules::default();
        let rule = |f: ChargeFacts<'_>| match decide_charge(&rules, &f) {
            ChargeDecision::Decline(d) => d.rule,
            ChargeDecision::NeedsPin => "needs_pin",
            ChargeDecision::Charge => "charge",
        };
        assert_eq!(rule(facts(1_250, 10_000)), "charge");
        assert_eq!(rule(facts(1_250, 1_249)), "balance");
        assert_eq!(rule(facts(1_250, 1_250)), "charge", "paying the whole balance is allowed");
        // Frozen comes before everything, even a short balance.
        assert_eq!(rule(ChargeFacts { frozen: true, ..facts(1_250, 0) }), "wallet_frozen");
        // Over the password-free limit: the PIN is asked before the balance is looked at.
        assert_eq!(rule(facts(100_001, 0)), "needs_pin");
        assert_eq!(rule(ChargeFacts { pin: PinProof::Verified, ..facts(100_001, 0) }), "balance");
        // The daily limit counts this charge on top of what was paid out.
        let near =
            ChargeFacts { paid_out_24h: 9_999_000, pin: PinProof::Verified, ..facts(1_001, 99_999_999) };
        assert_eq!(rule(near), "daily_limit");
        assert_eq!(rule(ChargeFacts { recent_attempts: Some(1_000), ..facts(1, 10) }), "wallet_velocity");
    }

    #[test]
    fn a_payment_changes_status_only_by_its_events() {
        let c = Currency::CNY;
        let order = Order {
            id: "pay_1".into(),
            merchant_id: "mch_1".into(),
            terminal_id: None,
            out_trade_no: "o1".into(),
            amount: Money::new(1_000, c),
            subject: "tea".into(),
            items: "[]".into(),
            mode: PaymentMode::Cpm,
            fingerprint: Some("f".into()),
            created_at: "t".into(),
        };
        let mut p = Payment::pending(order);
        p.charge("cus_1", Money::new(6, c), "t1").unwrap();
        assert_eq!(p.status(), PaymentStatus::Succeeded);
        assert!(p.close().is_err(), "a paid payment cannot be closed");
        assert!(p.decline("insufficient_funds").is_err(), "a paid payment cannot fail");
        let d = decide_refund(p.refundable(), Money::new(1_000, c)).unwrap();
        p.apply_refund(&d).unwrap();
        assert_eq!(
            (p.status(), p.refunded.amount_minor(), p.fee_returned.amount_minor()),
            (PaymentStatus::Refunded, 1_000, 6)
        );
        assert!(
            p.charge("cus_1", Money::zero(c), "t2").is_err(),
            "a refunded payment is never charged again"
        );
    }

    #[test]
    fn out_trade_no_rules() {
        assert!(valid_out_trade_no("A-1_b"));
        assert!(!valid_out_trade_no(""));
        assert!(!valid_out_trade_no("a b"));
        assert!(!valid_out_trade_no(&"x".repeat(65)));
    }
}
