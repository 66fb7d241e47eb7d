//! The double-entry ledger's rules: accounts, postings, balanced journal entries.
//!
//! Every movement of money is one journal entry whose debits equal its credits in each
//! currency. Entries are immutable; a correction is a new entry. This module decides,
//! it never stores: the store applies the postings it returns.

use crate::money::{Currency, Money, MoneyError};
use std::collections::BTreeMap;

/// What an account is for; decides its normal balance side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// What the platform owes a customer (liability). Never below zero.
    CustomerWallet,
    /// What the platform owes a merchant (liability). May go negative after refunds
    /// that follow a settlement; the debt is carried forward.
    MerchantPayable,
    /// The platform's fee income (revenue, credit-normal).
    FeeRevenue,
    /// Cash received from top-ups (asset).
    CashIn,
    /// Money paid out to merchants' banks (asset side of settlement).
    Settlement,
}

impl AccountKind {
    /// The name used in the database and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountKind::CustomerWallet => "customer_wallet",
            AccountKind::MerchantPayable => "merchant_payable",
            AccountKind::FeeRevenue => "fee_revenue",
            AccountKind::CashIn => "cash_in",
            AccountKind::Settlement => "settlement",
        }
    }

    /// Parses [`AccountKind::as_str`].
    pub fn parse(s: &str) -> Option<AccountKind> {
        [
            AccountKind::CustomerWallet,
            AccountKind::MerchantPayable,
            AccountKind::FeeRevenue,
            AccountKind::CashIn,
            AccountKind::Settlement,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// True when a credit increases the balance (liabilities and revenue).
    pub fn credit_normal(&self) -> bool {
        !matches!(self, AccountKind::CashIn | AccountKind::Settlement)
    }

    /// True when the balance may never go below zero.
    pub fn must_stay_non_negative(&self) -> bool {
        matches!(self, AccountKind::CustomerWallet)
    }
}

/// Which side of an account a posting lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    /// `debit` or `credit`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }
}

/// An account named by what it is and whose it is; the store gives it a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountRef {
    pub kind: AccountKind,
    /// The owner's id (customer or merchant), or `platform` for platform accounts.
    pub owner: String,
    pub currency_code: &'static str,
}

impl AccountRef {
    /// A customer's wallet in one currency.
    pub fn wallet(customer_id: &str, currency: Currency) -> AccountRef {
        AccountRef::of(AccountKind::CustomerWallet, customer_id, currency)
    }

    /// A merchant's payable account in one currency.
    pub fn payable(merchant_id: &str, currency: Currency) -> AccountRef {
        AccountRef::of(AccountKind::MerchantPayable, merchant_id, currency)
    }

    /// A platform account (fee revenue, cash-in, settlement) in one currency.
    pub fn platform(kind: AccountKind, currency: Currency) -> AccountRef {
        AccountRef::of(kind, "platform", currency)
    }

    fn of(kind: AccountKind, owner: &str, currency: Currency) -> AccountRef {
        AccountRef { kind, owner: owner.to_string(), currency_code: currency.code() }
    }

    /// A stable key for the account: `kind:owner:currency`.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.owner, self.currency_code)
    }
}

/// One line of a journal entry: an amount (always positive) on one side of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: AccountRef,
    pub direction: Direction,
    pub amount: Money,
}

impl Posting {
    /// How this posting changes the account's balance (in its normal-balance sign).
    pub fn balance_delta(&self) -> i64 {
        let credit_up = self.account.kind.credit_normal();
        match (self.direction, credit_up) {
            (Direction::Credit, true) | (Direction::Debit, false) => self.amount.amount_minor(),
            _ => -self.amount.amount_minor(),
        }
    }
}

/// Why an entry is not a valid journal entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a journal entry needs at least two postings")]
    TooFewPostings,
    #[error("posting amounts must be positive")]
    NonPositivePosting,
    #[error("posting currency does not match its account")]
    AccountCurrencyMismatch,
    #[error("debits and credits differ in {0}")]
    Unbalanced(Currency),
    #[error("account {0} would go below zero")]
    WouldGoNegative(String),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A balanced set of postings, the only way money moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    postings: Vec<Posting>,
}

impl JournalEntry {
    /// Checks that the postings are positive, match their accounts' currencies, and balance
    /// per currency. Zero-amount lines (a zero fee) are dropped rather than refused.
    pub fn new(postings: Vec<Posting>) -> Result<JournalEntry, LedgerError> {
        let postings: Vec<Posting> = postings.into_iter().filter(|p| p.amount.amount_minor() != 0).collect();
        if postings.len() < 2 {
            return Err(LedgerError::TooFewPostings);
        }
        let mut sums: BTreeMap<&'static str, (Currency, i64, i64)> = BTreeMap::new();
        for p in &postings {
            if p.amount.amount_minor() < 0 {
                return Err(LedgerError::NonPositivePosting);
            }
            if p.account.currency_code != p.amount.currency().code() {
                return Err(LedgerError::AccountCurrencyMismatch);
            }
            let slot = sums.entry(p.amount.currency().code()).or_insert((p.amount.currency(), 0, 0));
            let add = |a: i64| a.checked_add(p.amount.amount_minor()).ok_or(MoneyError::Overflow);
            match p.direction {
                Direction::Debit => slot.1 = add(slot.1)?,
                Direction::Credit => slot.2 = add(slot.2)?,
            }
        }
        if let Some((currency, _, _)) = sums.values().find(|(_, d, c)| d != c) {
            return Err(LedgerError::Unbalanced(*currency));
        }
        Ok(JournalEntry { postings })
    }

    /// The postings, in the order given.
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }
}

fn posting(account: AccountRef, direction: Direction, amount: Money) -> Posting {
    Posting { account, direction, amount }
}

/// A customer pays a merchant: the wallet is debited the amount, the merchant's payable is
/// credited the amount less the fee, and the platform's fee revenue the fee.
pub fn payment_entry(
    customer_id: &str,
    merchant_id: &str,
    amount: Money,
    fee: Money,
) -> Result<JournalEntry, LedgerError> {
    let net = amount.checked_sub(fee)?;
    let c = amount.currency();
    JournalEntry::new(vec![
        posting(AccountRef::wallet(customer_id, c), Direction::Debit, amount),
        posting(AccountRef::payable(merchant_id, c), Direction::Credit, net),
        posting(AccountRef::platform(AccountKind::FeeRevenue, c), Direction::Credit, fee),
    ])
}

/// A refund reverses part of a payment: the customer is credited, the merchant's payable
/// and the fee revenue are debited pro rata.
pub fn refund_entry(
    customer_id: &str,
    merchant_id: &str,
    amount: Money,
    fee_returned: Money,
) -> Result<JournalEntry, LedgerError> {
    let net = amount.checked_sub(fee_returned)?;
    let c = amount.currency();
    JournalEntry::new(vec![
        posting(AccountRef::payable(merchant_id, c), Direction::Debit, net),
        posting(AccountRef::platform(AccountKind::FeeRevenue, c), Direction::Debit, fee_returned),
        posting(AccountRef::wallet(customer_id, c), Direction::Credit, amount),
    ])
}

/// Cash comes in for a customer: the platform's cash-in asset rises, so does the wallet.
pub fn top_up_entry(customer_id: &str, amount: Money) -> Result<JournalEntry, LedgerError> {
    let c = amount.currency();
    JournalEntry::new(vec![
        posting(AccountRef::platform(AccountKind::CashIn, c), Direction::Debit, amount),
        posting(AccountRef::wallet(customer_id, c), Direction::Credit, amount),
    ])
}

/// One customer sends money to another.
pub fn transfer_entry(
    from_customer: &str,
    to_customer: &str,
    amount: Money,
) -> Result<JournalEntry, LedgerError> {
    let c = amount.currency();
    JournalEntry::new(vec![
        posting(AccountRef::wallet(from_customer, c), Direction::Debit, amount),
        posting(AccountRef::wallet(to_customer, c), Direction::Credit, amount),
    ])
}

/// A settlement pays a merchant's payable out to its bank: the liability and the bank
/// asset both go down.
pub fn settlement_entry(merchant_id: &str, amount: Money) -> Result<JournalEntry, LedgerError> {
    let c = amount.currency();
    JournalEntry::new(vec![
        posting(AccountRef::payable(merchant_id, c), Direction::Debit, amount),
        posting(AccountRef::platform(AccountKind::Settlement, c), Direction::Credit, amount),
    ])
}

/// An in-memory ledger that applies entries with the same rules the store enforces; used by
/// property tests and simulations.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    balances: BTreeMap<AccountRef, i64>,
    debits: BTreeMap<&'static str, i64>,
    credits: BTreeMap<&'static str, i64>,
}

impl Ledger {
    /// Applies an entry whole, or refuses it whole when an account would break its rule.
    pub fn apply(&mut self, entry: &JournalEntry) -> Result<(), LedgerError> {
        let mut next = self.balances.clone();
        for p in entry.postings() {
            let bal = next.entry(p.account.clone()).or_insert(0);
            *bal = bal.checked_add(p.balance_delta()).ok_or(MoneyError::Overflow)?;
            if p.account.kind.must_stay_non_negative() && *bal < 0 {
                return Err(LedgerError::WouldGoNegative(p.account.key()));
            }
        }
        self.balances = next;
        for p in entry.postings() {
            let side = match p.direction {
                Direction::Debit => &mut self.debits,
                Direction::Credit => &mut self.credits,
            };
            *side.entry(p.amount.currency().code()).or_insert(0) += p.amount.amount_minor();
        }
        Ok(())
    }

    /// The balance of one account (zero when it never moved).
    pub fn balance(&self, account: &AccountRef) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    /// Total debits and credits per currency, and whether each pair is equal.
    pub fn trial_balance(&self) -> Vec<(&'static str, i64, i64)> {
        self.debits
            .keys()
            .chain(self.credits.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|c| {
                (*c, self.debits.get(c).copied().unwrap_or(0), self.credits.get(c).copied().unwrap_or(0))
            })
            .collect()
    }

    /// The sum over all accounts of asset balances minus liability and revenue balances
    /// in one currency: always zero for a balanced ledger.
    pub fn net_position(&self, currency_code: &str) -> i64 {
        self.balances
            .iter()
            .filter(|(a, _)| a.currency_code == currency_code)
            .map(|(a, b)| if a.kind.credit_normal() { -b } else { *b })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbalanced_entries_are_refused() {
        let c = Currency::CNY;
        let err = JournalEntry::new(vec![
            posting(AccountRef::wallet("cus_a", c), Direction::Debit, Money::new(100, c)),
            posting(AccountRef::payable("mch_a", c), Direction::Credit, Money::new(99, c)),
        ]);
        assert_eq!(err, Err(LedgerError::Unbalanced(c)));
    }

    #[test]
    fn wallet_cannot_go_negative() {
        let c = Currency::CNY;
        let mut ledger = Ledger::default();
        ledger.apply(&top_up_entry("cus_a", Money::new(100, c)).unwrap()).unwrap();
        let pay = payment_entry("cus_a", "mch_a", Money::new(101, c), Money::new(1, c)).unwrap();
        assert!(matches!(ledger.apply(&pay), Err(LedgerError::WouldGoNegative(_))));
        assert_eq!(ledger.balance(&AccountRef::wallet("cus_a", c)), 100);
    }

    #[test]
    fn payment_moves_net_and_fee() {
        let c = Currency::CNY;
        let mut ledger = Ledger::default();
        ledger.apply(&top_up_entry("cus_a", Money::new(1000, c)).unwrap()).unwrap();
        ledger
            .apply(&payment_entry("cus_a", "mch_a", Money::new(1000, c), Money::new(6, c)).unwrap())
            .unwrap();
        assert_eq!(ledger.balance(&AccountRef::payable("mch_a", c)), 994);
        assert_eq!(ledger.balance(&AccountRef::platform(AccountKind::FeeRevenue, c)), 6);
        assert_eq!(ledger.net_position("CNY"), 0);
    }
}
