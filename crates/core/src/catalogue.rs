//! Products and stock, pure: what a well-formed product is, how an order's catalogue lines
//! are priced, when stock is low, and how many of a sold line may still come back.
//!
//! Nothing here reads the catalogue or the clock: the caller looks products up and passes
//! them in. The stock itself moves only in the store, inside a payment's or refund's own
//! database transaction, with a guarded `UPDATE` that never lets it go below zero.

/// Why a product or an order line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("sku must be 1-64 of [A-Za-z0-9._-]")]
    BadSku,
    #[error("barcode must be 1-64 of [A-Za-z0-9]")]
    BadBarcode,
    #[error("price must be 0-10^12 minor units")]
    BadPrice,
    #[error("stock must be 0-10^9 units")]
    BadStock,
    #[error("quantity must be 1-10000")]
    BadQuantity,
    #[error("the order's total overflows")]
    Overflow,
    #[error("sku {0} is not in this payment's catalogue lines")]
    NotSold(String),
    #[error("only {left} of sku {sku} can still be refunded")]
    RefundTooMany { sku: String, left: i64 },
}

/// The most units a product can hold in stock.
pub const STOCK_MAX: i64 = 1_000_000_000;
/// The most units of one line.
pub const QUANTITY_MAX: u32 = 10_000;

/// Checks a stock-keeping unit: 1-64 of `[A-Za-z0-9._-]`.
pub fn check_sku(sku: &str) -> Result<(), CatalogueError> {
    let ok = (1..=64).contains(&sku.len())
        && sku.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(CatalogueError::BadSku) }
}

/// Checks an item barcode (EAN-13, UPC-A, Code 128 text...): 1-64 letters and digits.
pub fn check_barcode(code: &str) -> Result<(), CatalogueError> {
    let ok = (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(CatalogueError::BadBarcode) }
}

/// Checks a unit price in minor units: zero (a free item) up to 10^12.
pub fn check_price(price: i64) -> Result<(), CatalogueError> {
    if (0..=crate::money::AMOUNT_MINOR_MAX).contains(&price) { Ok(()) } else { Err(CatalogueError::BadPrice) }
}

/// Checks a stock level or a low-stock threshold.
pub fn check_stock(stock: i64) -> Result<(), CatalogueError> {
    if (0..=STOCK_MAX).contains(&stock) { Ok(()) } else { Err(CatalogueError::BadStock) }
}

/// Checks a line's quantity.
pub fn check_quantity(quantity: u32) -> Result<(), CatalogueError> {
    if (1..=QUANTITY_MAX).contains(&quantity) { Ok(()) } else { Err(CatalogueError::BadQuantity) }
}

/// True when a tracked product has fallen to its low-stock threshold or below.
pub fn is_low(stock: Option<i64>, threshold: Option<i64>) -> bool {
    matches!((stock, threshold), (Some(s), Some(t)) if s <= t)
}

/// One priced line of an order: `quantity` units at `unit_amount` minor units each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: Option<String>,
    pub quantity: u32,
    pub unit_amount: i64,
}

/// The total of an order's lines, with overflow refused.
pub fn total(lines: &[Line]) -> Result<i64, CatalogueError> {
    lines.iter().try_fold(0i64, |sum, l| {
        i64::from(l.quantity)
            .checked_mul(l.unit_amount)
            .and_then(|v| sum.checked_add(v))
            .ok_or(CatalogueError::Overflow)
    })
}

/// Units of each sku in an order, summed over its lines, in sku order (the order rows are
/// locked in, so two sales never wait on each other's rows crosswise).
pub fn units_by_sku(lines: &[Line]) -> Vec<(String, i64)> {
    let mut out: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for l in lines {
        if let Some(sku) = &l.sku {
            *out.entry(sku.clone()).or_default() += i64::from(l.quantity);
        }
    }
    out.into_iter().collect()
}

/// What a refund of `quantity` units of `sku` is worth, at the price the payment sold
/// them for, after checking that no more come back than were sold and not yet returned
/// (`returned`: units of that sku already refunded).
pub fn refund_value(sold: &[Line], sku: &str, quantity: u32, returned: i64) -> Result<i64, CatalogueError> {
    check_quantity(quantity)?;
    let lines: Vec<&Line> = sold.iter().filter(|l| l.sku.as_deref() == Some(sku)).collect();
    if lines.is_empty() {
        return Err(CatalogueError::NotSold(sku.to_string()));
    }
    let units: i64 = lines.iter().map(|l| i64::from(l.quantity)).sum();
    let left = units - returned;
    if i64::from(quantity) > left {
        return Err(CatalogueError::RefundTooMany { sku: sku.to_string(), left: left.max(0) });
    }
    // Lines of one sku normally share a price; if not, units come back dearest first, so a
    // refund never returns less than the customer paid for them.
    let mut prices: Vec<i64> =
        lines.iter().flat_map(|l| std::iter::repeat_n(l.unit_amount, l.quantity as usize)).collect();
    prices.sort_unstable_by(|a, b| b.cmp(a));
    let skip = usize::try_from(returned).map_err(|_| CatalogueError::Overflow)?;
    prices
        .iter()
        .skip(skip)
        .take(quantity as usize)
        .try_fold(0i64, |s, p| s.checked_add(*p))
        .ok_or(CatalogueError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: u32, unit_amount: i64) -> Line {
        Line { sku: Some(sku.into()), quantity, unit_amount }
    }

    #[test]
    fn skus_barcodes_and_numbers_are_checked() {
        assert!(check_sku("TEA-1.small_2").is_ok());
        assert_eq!(check_sku(""), Err(CatalogueError::BadSku));
        assert_eq!(check_sku("tea 1"), Err(CatalogueError::BadSku));
        assert_eq!(check_sku(&"x".repeat(65)), Err(CatalogueError::BadSku));
        assert!(check_barcode("6901234567892").is_ok());
        assert_eq!(check_barcode("690-123"), Err(CatalogueError::BadBarcode));
        assert_eq!(check_price(-1), Err(CatalogueError::BadPrice));
        assert!(check_price(0).is_ok());
        assert_eq!(check_stock(-1), Err(CatalogueError::BadStock));
        assert_eq!(check_quantity(0), Err(CatalogueError::BadQuantity));
    }

    #[test]
    fn totals_refuse_overflow() {
        assert_eq!(total(&[line("A", 3, 450), line("B", 1, 1200)]), Ok(2550));
        assert_eq!(total(&[line("A", 10_000, i64::MAX / 2)]), Err(CatalogueError::Overflow));
    }

    #[test]
    fn low_stock_needs_a_tracked_product_and_a_threshold() {
        assert!(is_low(Some(2), Some(2)));
        assert!(!is_low(Some(3), Some(2)));
        assert!(!is_low(None, Some(2)));
        assert!(!is_low(Some(0), None));
    }

    #[test]
    fn units_are_summed_per_sku_in_sku_order() {
        let lines = [
            line("B", 1, 1),
            line("A", 2, 1),
            Line { sku: None, quantity: 5, unit_amount: 1 },
            line("B", 3, 1),
        ];
        assert_eq!(units_by_sku(&lines), vec![("A".into(), 2), ("B".into(), 4)]);
    }

    #[test]
    fn refunds_return_no_more_than_was_sold() {
        let sold = [line("A", 3, 450), line("B", 1, 1200)];
        assert_eq!(refund_value(&sold, "A", 2, 0), Ok(900));
        assert_eq!(refund_value(&sold, "A", 1, 2), Ok(450));
        assert_eq!(
            refund_value(&sold, "A", 2, 2),
            Err(CatalogueError::RefundTooMany { sku: "A".into(), left: 1 })
        );
        assert_eq!(refund_value(&sold, "C", 1, 0), Err(CatalogueError::NotSold("C".into())));
        // Mixed prices of one sku come back dearest first.
        let mixed = [line("A", 1, 100), line("A", 1, 300)];
        assert_eq!(refund_value(&mixed, "A", 1, 0), Ok(300));
        assert_eq!(refund_value(&mixed, "A", 1, 1), Ok(100));
    }
}
