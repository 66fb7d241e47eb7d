//! Property tests of the pure rules: any sequence of ledger operations keeps debits equal
//! to credits and wallets non-negative; fees returned by refunds never exceed the fee;
//! terminal payment states stay terminal; EMV payloads round-trip; decimals round-trip.

use proptest::prelude::*;
use saoma_core::emv::{self, SaomaMerchantCode};
use saoma_core::ledger::{self, AccountRef, Ledger};
use saoma_core::money::{CURRENCIES, Currency, Money};
use saoma_core::payment::{self, PaymentEvent, PaymentStatus, RefundablePayment};

#[derive(Debug, Clone)]
enum Op {
    TopUp(usize, i64),
    Pay(usize, usize, i64, u32),
    Transfer(usize, usize, i64),
    Refund(usize, usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 1..100_000i64).prop_map(|(c, a)| Op::TopUp(c, a)),
        (0..4usize, 0..3usize, 1..100_000i64, 0..1000u32).prop_map(|(c, m, a, f)| Op::Pay(c, m, a, f)),
        (0..4usize, 0..4usize, 1..100_000i64).prop_map(|(a, b, x)| Op::Transfer(a, b, x)),
        (0..4usize, 0..3usize, 1..100_000i64).prop_map(|(c, m, a)| Op::Refund(c, m, a)),
    ]
}

proptest! {
    #[test]
    fn ledger_stays_balanced(ops in proptest::collection::vec(op(), 1..200)) {
        let cny = Currency::CNY;
        let mut l = Ledger::default();
        let cus = |i: usize| format!("cus_{i}");
        let mch = |i: usize| format!("mch_{i}");
        for op in ops {
            let entry = match op {
                Op::TopUp(c, a) => ledger::top_up_entry(&cus(c), Money::new(a, cny)),
                Op::Pay(c, m, a, bps) => {
                    let amount = Money::new(a, cny);
                    ledger::payment_entry(&cus(c), &mch(m), amount, payment::fee_for(amount, bps))
                }
                Op::Transfer(a, b, x) => ledger::transfer_entry(&cus(a), &cus(b), Money::new(x, cny)),
                Op::Refund(c, m, a) => ledger::refund_entry(&cus(c), &mch(m), Money::new(a, cny), Money::new(a / 100, cny)),
            };
            let entry = entry.unwrap();
            // A refused entry changes nothing; an applied one keeps the books balanced.
            let before = l.clone();
            if l.apply(&entry).is_err() {
                prop_assert_eq!(format!("{:?}", l.trial_balance()), format!("{:?}", before.trial_balance()));
            }
            for (_, d, c) in l.trial_balance() {
                prop_assert_eq!(d, c);
            }
            prop_assert_eq!(l.net_position("CNY"), 0);
            for i in 0..4 {
                prop_assert!(l.balance(&AccountRef::wallet(&cus(i), cny)) >= 0);
            }
        }
    }

    #[test]
    fn refunds_never_return_more_than_the_fee(amount in 1..10_000_000i64, bps in 0..10_000u32,
            parts in proptest::collection::vec(1..1_000_000i64, 1..20)) {
        let c = Currency::CNY;
        let amount = Money::new(amount, c);
        let mut p = RefundablePayment { status: PaymentStatus::Succeeded, amount, fee: payment::fee_for(amount, bps),
            refunded: Money::zero(c), fee_returned: Money::zero(c) };
        for part in parts {
            let left = p.amount.amount_minor() - p.refunded.amount_minor();
            if left == 0 { break; }
            let ask = Money::new(part.min(left), c);
            let d = payment::decide_refund(p, ask).unwrap();
            prop_assert!(d.fee_returned.amount_minor() >= 0);
            prop_assert!(d.fee_returned_after.amount_minor() <= p.fee.amount_minor());
            p.refunded = d.refunded_after;
            p.fee_returned = d.fee_returned_after;
            p.status = d.status_after;
        }
        if p.refunded == p.amount {
            prop_assert_eq!(p.status, PaymentStatus::Refunded);
            prop_assert_eq!(p.fee_returned, p.fee);
        }
    }

    #[test]
    fn terminal_states_stay_terminal(events in proptest::collection::vec(0..5u8, 1..30)) {
        let mut s = PaymentStatus::Pending;
        for e in events {
            let e = [PaymentEvent::Charge, PaymentEvent::Decline, PaymentEvent::Close,
                PaymentEvent::RefundInFull, PaymentEvent::RefundInPart][usize::from(e)];
            if let Ok(next) = payment::transition(s, e) {
                prop_assert!(!s.is_terminal());
                s = next;
            }
        }
    }

    #[test]
    fn decimal_round_trip(minor in 0..1_000_000_000_000i64, idx in 0..CURRENCIES.len()) {
        let c = CURRENCIES[idx];
        let m = Money::new(minor, c);
        prop_assert_eq!(Money::parse_decimal(&m.to_decimal(), c).unwrap(), m);
    }

    #[test]
    fn mpm_round_trip(name in "\\PC{1,25}", city in "[A-Za-z ]{1,15}", mid in "mch_[0-9A-Z]{26}",
            amount in proptest::option::of(1..1_000_000_000i64), idx in 0..CURRENCIES.len(),
            reference in proptest::option::of("[A-Za-z0-9]{1,25}")) {
        let currency = CURRENCIES[idx];
        let code = SaomaMerchantCode { merchant_id: mid.clone(), merchant_name: name, mcc: "5812".into(),
            country: "CN".into(), city, currency, amount: amount.map(|a| Money::new(a, currency)),
            reference: reference.clone() };
        let payload = code.encode().unwrap();
        let p = emv::decode(&payload).unwrap();
        prop_assert_eq!(p.saoma_merchant_id(), Some(mid.as_str()));
        prop_assert_eq!(p.currency(), Some(currency));
        prop_assert_eq!(p.amount(), code.amount);
        prop_assert_eq!(p.reference(), reference.as_deref());
        prop_assert_eq!(p.is_dynamic(), amount.is_some());
        prop_assert!(p.warnings.is_empty());
    }

    #[test]
    fn decoder_never_panics(s in "\\PC{0,80}") {
        let _ = emv::decode(&s);
        let _ = saoma_core::scan::classify(&s);
    }

    #[test]
    fn any_single_character_change_is_caught(idx in 0usize..60, ch in "[0-9A-Z]") {
        let payload = SaomaMerchantCode { merchant_id: "mch_01ABC".into(), merchant_name: "Noodle Bar".into(),
            mcc: "5812".into(), country: "CN".into(), city: "Beijing".into(), currency: Currency::CNY,
            amount: Some(Money::new(1250, Currency::CNY)), reference: Some("R1".into()) }.encode().unwrap();
        let mut chars: Vec<char> = payload.chars().collect();
        let i = idx % chars.len();
        let c = ch.chars().next().unwrap();
        prop_assume!(chars[i] != c);
        chars[i] = c;
        let tampered: String = chars.into_iter().collect();
        prop_assert!(emv::decode(&tampered).is_err());
    }
}
