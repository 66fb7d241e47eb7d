//! Saoma's payment rules, pure: no I/O, no async, no clock, no random numbers.
//!
//! Everything that decides whether money moves lives here so it can be tested fast and
//! exhaustively; the store and the server only load, ask, and save.

pub mod address;
pub mod audit;
pub mod barcode;
pub mod catalogue;
pub mod emv;
pub mod ids;
pub mod ledger;
pub mod merchant;
pub mod money;
pub mod paycode;
pub mod payment;
pub mod privacy;
pub mod report;
pub mod risk;
pub mod scan;
pub mod statement;

pub use money::{Currency, Money, MoneyError};
