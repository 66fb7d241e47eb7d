//! A merchant's sales report for its charts: paid payments bucketed by local hour, by
//! local day, by terminal and by product, each with count, amount, fee, refunds and net.
//! The caller turns times into the merchant's zone; nothing here knows a clock.

use std::collections::BTreeMap;

/// One paid payment as the report counts it, in minor units of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// The hour of the day it was paid, 0-23, in the merchant's zone.
    pub hour: u32,
    /// The business day it was paid, `YYYY-MM-DD`, in the merchant's zone.
    pub day: String,
    /// The terminal's name, or `None` for a payment made without a till.
    pub terminal: Option<String>,
    pub amount: i64,
    pub fee: i64,
    pub refunded: i64,
    pub fee_returned: i64,
    /// (sku or name, name, quantity, unit amount) of each line.
    pub lines: Vec<(String, String, u32, i64)>,
}

/// The totals of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Bucket {
    pub key: String,
    pub label: String,
    pub count: u64,
    pub amount: i64,
    pub fee: i64,
    pub refunded: i64,
    /// What the merchant keeps: amount − fee − refunded + fee returned.
    pub net: i64,
}

impl Bucket {
    fn add(&mut self, count: u64, amount: i64, fee: i64, refunded: i64, fee_returned: i64) {
        self.count += count;
        self.amount = self.amount.saturating_add(amount);
        self.fee = self.fee.saturating_add(fee);
        self.refunded = self.refunded.saturating_add(refunded);
        self.net = self.net.saturating_add(amount - fee - refunded + fee_returned);
    }
}

/// The report: totals and the four breakdowns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub totals: Bucket,
    /// All 24 hours, in order.
    pub by_hour: Vec<Bucket>,
    /// Each day given, in order.
    pub by_day: Vec<Bucket>,
    pub by_terminal: Vec<Bucket>,
    /// Products by amount sold, largest first. A product's fee and refunds are not
    /// split from its payment's, so only count (units) and amount are filled.
    pub by_product: Vec<Bucket>,
}

/// Buckets `sales` over `days` (every day of the period, so quiet days show as zero).
pub fn report(sales: &[Sale], days: &[String]) -> Report {
    let mut r = Report {
        by_hour: (0..24)
            .map(|h| Bucket { key: h.to_string(), label: format!("{h:02}:00"), ..Bucket::default() })
            .collect(),
        by_day: days
            .iter()
            .map(|d| Bucket { key: d.clone(), label: d.clone(), ..Bucket::default() })
            .collect(),
        ..Report::default()
    };
    let mut terminals: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut products: BTreeMap<String, Bucket> = BTreeMap::new();
    for s in sales {
        let add = |b: &mut Bucket| b.add(1, s.amount, s.fee, s.refunded, s.fee_returned);
        add(&mut r.totals);
        if let Some(b) = r.by_hour.get_mut(s.hour as usize) {
            add(b);
        }
        if let Some(b) = r.by_day.iter_mut().find(|b| b.key == s.day) {
            add(b);
        }
        let t = s.terminal.clone().unwrap_or_default();
        add(terminals.entry(t.clone()).or_insert_with(|| Bucket {
            key: t.clone(),
            label: t,
            ..Bucket::default()
        }));
        for (key, name, quantity, unit) in &s.lines {
            let b = products.entry(key.clone()).or_insert_with(|| Bucket {
                key: key.clone(),
                label: name.clone(),
                ..Bucket::default()
            });
            b.count += u64::from(*quantity);
            b.amount = b.amount.saturating_add(i64::from(*quantity).saturating_mul(*unit));
            b.net = b.amount;
        }
    }
    r.by_terminal = terminals.into_values().collect();
    let mut by_product: Vec<Bucket> = products.into_values().collect();
    by_product.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
    r.by_product = by_product;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(hour: u32, day: &str, terminal: &str, amount: i64, refunded: i64) -> Sale {
        Sale {
            hour,
            day: day.into(),
            terminal: Some(terminal.into()),
            amount,
            fee: amount / 100,
            refunded,
            fee_returned: refunded / 100,
            lines: vec![("TEA".into(), "Tea".into(), 2, amount / 2)],
        }
    }

    #[test]
    fn sales_are_bucketed_with_fees_and_net() {
        let days = vec!["2026-11-28".to_string(), "2026-11-29".to_string()];
        let r = report(
            &[sale(9, "2026-11-29", "Till 1", 1000, 0), sale(9, "2026-11-29", "Till 2", 2000, 500)],
            &days,
        );
        assert_eq!((r.totals.count, r.totals.amount, r.totals.fee, r.totals.refunded), (2, 3000, 30, 500));
        assert_eq!(r.totals.net, 3000 - 30 - 500 + 5);
        assert_eq!(r.by_hour.len(), 24);
        assert_eq!(r.by_hour[9].amount, 3000);
        assert_eq!((r.by_day[0].amount, r.by_day[1].amount), (0, 3000), "quiet days show as zero");
        assert_eq!(r.by_terminal.iter().map(|b| b.key.as_str()).collect::<Vec<_>>(), ["Till 1", "Till 2"]);
        assert_eq!((r.by_product[0].count, r.by_product[0].amount), (4, 3000));
    }
}
