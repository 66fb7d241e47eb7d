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

    #[test]
    fn out_trade_no_rules() {
        assert!(valid_out_trade_no("A-1_b"));
        assert!(!valid_out_trade_no(""));
        assert!(!valid_out_trade_no("a b"));
        assert!(!valid_out_trade_no(&"x".repeat(65)));
    }
}
