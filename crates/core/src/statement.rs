//! A merchant's daily statement: one line per payment and refund of the business day,
//! with fee and net, then one total line per currency. Amounts are decimal in the
//! currency's unit; refunds are negative. The net total equals the day's movement of the
//! merchant's payable account in the ledger, to the cent.

use crate::money::{Currency, Money};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One line: a payment (positive) or a refund (negative), in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// `payment` or `refund`.
    pub kind: &'static str,
    pub id: String,
    /// The merchant's own number: `out_trade_no` or `out_refund_no`.
    pub reference: String,
    pub payment_id: String,
    /// When, in the merchant's time zone (RFC 3339 with offset).
    pub time: String,
    pub currency: Currency,
    pub amount: i64,
    pub fee: i64,
}

impl StatementLine {
    /// What the merchant is owed for this line.
    pub fn net(&self) -> i64 {
        self.amount - self.fee
    }
}

/// Totals of one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementTotal {
    pub count: u64,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
}

/// Totals per currency code.
pub fn totals(lines: &[StatementLine]) -> BTreeMap<&'static str, StatementTotal> {
    let mut out: BTreeMap<&'static str, StatementTotal> = BTreeMap::new();
    for l in lines {
        let t = out.entry(l.currency.code()).or_default();
        t.count += 1;
        t.amount += l.amount;
        t.fee += l.fee;
        t.net += l.net();
    }
    out
}

const HEADER: &str = "type,id,reference,payment_id,time,currency,amount,fee,net";

/// The statement as CSV (RFC 4180): a header, the lines in the order given, then a
/// `total` line per currency whose `reference` column holds the line count.
pub fn to_csv(lines: &[StatementLine]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    let dec = |minor: i64, c: Currency| Money::new(minor, c).to_decimal();
    for l in lines {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            l.kind,
            field(&l.id),
            field(&l.reference),
            field(&l.payment_id),
            field(&l.time),
            l.currency.code(),
            dec(l.amount, l.currency),
            dec(l.fee, l.currency),
            dec(l.net(), l.currency)
        );
    }
    for (code, t) in totals(lines) {
        let c = Currency::from_code(code).unwrap_or(lines[0].currency);
        let _ = writeln!(
            out,
            "total,,{},,,{code},{},{},{}",
            t.count,
            dec(t.amount, c),
            dec(t.fee, c),
            dec(t.net, c)
        );
    }
    out
}

/// Quotes a field when it holds a comma, quote or line break; a leading `=`, `+`, `-` or
/// `@` is prefixed with `'` so spreadsheets do not run it as a formula.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &'static str, amount: i64, fee: i64, reference: &str) -> StatementLine {
        StatementLine {
            kind,
            id: format!("{kind}_1"),
            reference: reference.into(),
            payment_id: "pay_1".into(),
            time: "2026-11-25T10:00:00+08:00".into(),
            currency: Currency::from_code("CNY").unwrap(),
            amount,
            fee,
        }
    }

    #[test]
    fn lines_then_totals_equal_to_the_cent() {
        let lines = vec![
            line("payment", 1250, 8, "o-1"),
            line("payment", 999, 6, "o-2"),
            line("refund", -250, -2, "r-1"),
        ];
        let csv = to_csv(&lines);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], HEADER);
        assert_eq!(rows[1], "payment,payment_1,o-1,pay_1,2026-11-25T10:00:00+08:00,CNY,12.50,0.08,12.42");
        assert_eq!(rows[3], "refund,refund_1,r-1,pay_1,2026-11-25T10:00:00+08:00,CNY,-2.50,-0.02,-2.48");
        assert_eq!(rows[4], "total,,3,,,CNY,19.99,0.12,19.87");
        let t = totals(&lines)["CNY"];
        assert_eq!(t.net, 1250 - 8 + 999 - 6 - 250 + 2);
    }

    #[test]
    fn hostile_references_cannot_break_rows_or_run_formulas() {
        let csv = to_csv(&[line("payment", 100, 1, "=HYPERLINK(\"x\"),\nevil")]);
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains("\"'=HYPERLINK(\"\"x\"\"),"), "{row}");
        assert_eq!(csv.lines().filter(|l| l.starts_with("total")).count(), 1);
    }
}
