//! Stock on the payment path. The payment and refund services each call into here once:
//! [`priced`] before a payment is created (catalogue lines get the product's name and
//! price, and an order that cannot be served is refused early), [`take`] inside the
//! charge's own transaction (the units leave the stock, or the whole charge rolls back
//! with `out_of_stock`), and [`put_back`] inside a refund's.
//!
//! Stock is taken when the money moves, not when a dynamic code is shown: a code that is
//! never paid holds nothing back, and a code paid after the last unit was sold elsewhere
//! is refused `out_of_stock` with the customer's money untouched.
//!
//! Lock order on PostgreSQL: a charge locks the payer's wallet, then the ledger's account
//! rows, then the product rows (by sku), then the audit chain head; a refund locks the
//! same kinds in the same order. So stock never deadlocks against money.

use crate::error::{ApiError, ApiResult};
use crate::payments::OpError;
use crate::util::new_id;
use crate::views;
use crate::{AppState, work::Work};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::catalogue::{self, CatalogueError, Line};
use saoma_core::payment::Payment;
use saoma_store::{StockMovementRow, StoreError};

/// The id prefix of a stock movement.
pub const MOVEMENT_PREFIX: &str = "stk_";

/// 409 `out_of_stock`, naming the sku.
pub fn out_of_stock(sku: &str) -> ApiError {
    let mut e = ApiError::new(ErrorCode::OutOfStock, format!("sku {sku} is out of stock"));
    e.param = Some("items");
    e.sku = Some(sku.into());
    e
}

fn bad_items(message: impl Into<String>, sku: Option<&str>) -> ApiError {
    let mut e = ApiError::invalid("items", message);
    e.sku = sku.map(Into::into);
    e
}

fn lines_of(items: &[api::Item]) -> Vec<Line> {
    items
        .iter()
        .map(|i| Line { sku: i.sku.clone(), quantity: i.quantity, unit_amount: i.unit_amount })
        .collect()
}

/// The lines a stored payment was sold with (checked when it was created).
fn sold_lines(p: &Payment) -> Result<Vec<Line>, StoreError> {
    Ok(lines_of(&views::items(p)?))
}

/// Prices a payment request's catalogue lines (`{sku, quantity}` without a name) from
/// the merchant's catalogue and fills in `amount` when it was left out; a given amount
/// must equal the lines' total. Lines naming a tracked product are checked against its
/// stock now, so a till learns early; the stock itself is taken when the payment is
/// charged. A request with no sku in its lines is returned as it came.
pub async fn priced(
    state: &AppState,
    merchant_id: &str,
    mut req: api::CreatePaymentRequest,
) -> ApiResult<api::CreatePaymentRequest> {
    let Some(items) = req.items.as_mut() else { return Ok(req) };
    if items.iter().all(|i| i.sku.is_none()) || items.len() > 100 {
        return Ok(req);
    }
    // A retry of an order already made answers that payment (its fingerprint decides),
    // whatever the catalogue and the stock say now: the units it sold are gone.
    // An order number cancelled before any payment was made with it is refused by the
    // payment service (`payment_closed`); only its stock is not worth looking at.
    let known = state.store.payment_by_trade_no(merchant_id, &req.out_trade_no).await?;
    if let Some(p) = known.as_ref().filter(|p| p.fingerprint.is_some()) {
        req.items = Some(views::items(p)?);
        req.amount = p.amount.amount_minor();
        return Ok(req);
    }
    let mut from_catalogue = false;
    for item in items.iter_mut() {
        if !item.name.is_empty() {
            continue;
        }
        let Some(sku) = item.sku.as_deref() else {
            return Err(bad_items("each item needs a name and unit_amount, or a sku", None));
        };
        if item.unit_amount != 0 {
            return Err(bad_items(
                "a catalogue line (no name) takes its price from the catalogue",
                Some(sku),
            ));
        }
        catalogue::check_quantity(item.quantity).map_err(|e| bad_items(e.to_string(), Some(sku)))?;
        let product = state.store.product_by_sku(merchant_id, sku).await?.filter(|p| p.active != 0);
        let product =
            product.ok_or_else(|| bad_items(format!("no active product with sku {sku}"), Some(sku)))?;
        item.name = product.name;
        item.unit_amount = product.price;
        from_catalogue = true;
    }
    for (sku, units) in catalogue::units_by_sku(&lines_of(items)).into_iter().filter(|_| known.is_none()) {
        let product = state.store.product_by_sku(merchant_id, &sku).await?;
        if product.and_then(|p| p.stock).is_some_and(|stock| stock < units) {
            return Err(out_of_stock(&sku));
        }
    }
    if from_catalogue {
        let total = catalogue::total(&lines_of(items)).map_err(|e| bad_items(e.to_string(), None))?;
        if req.amount == 0 {
            req.amount = total;
        } else if req.amount != total {
            let mut e = ApiError::new(
                ErrorCode::AmountMismatch,
                format!("amount {} differs from the items' total {total}", req.amount),
            );
            e.param = Some("amount");
            return Err(e);
        }
    }
    Ok(req)
}

/// Whether charging `p` takes stock (and so locks products): it has lines with a sku.
pub fn sells(p: &Payment) -> Result<bool, StoreError> {
    Ok(!catalogue::units_by_sku(&sold_lines(p)?).is_empty())
}

/// Takes the stock of a payment's lines inside the charge's transaction: one sale
/// movement per catalogue product, and `out_of_stock` (rolling the whole charge back)
/// when a tracked product has fewer units than sold.
pub async fn take(work: &mut Work, p: &Payment, actor: &str, now: &str) -> Result<(), OpError> {
    for (sku, units) in catalogue::units_by_sku(&sold_lines(p)?) {
        let Some(product) = work.product_by_sku(&p.merchant_id, &sku).await? else { continue };
        let stock_after = match product.stock {
            None => None,
            Some(_) => {
                Some(work.move_stock(&product.id, -units, now).await?.ok_or_else(|| out_of_stock(&sku))?)
            }
        };
        let m = movement(&product, -units, "sale", stock_after, (Some(&p.id), None), None, actor, now);
        work.insert_stock_movement(&m).await?;
    }
    Ok(())
}

/// Sums a refund's units per sku, refusing an empty list or a bad quantity.
fn units_of(items: &[api::RefundItem]) -> ApiResult<Vec<(String, u32)>> {
    if items.is_empty() || items.len() > 100 {
        return Err(bad_items("a refund's items are 1-100 lines", None));
    }
    let mut by_sku: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for i in items {
        catalogue::check_quantity(i.quantity).map_err(|e| bad_items(e.to_string(), Some(&i.sku)))?;
        let n = by_sku.entry(i.sku.clone()).or_default();
        *n = n.saturating_add(i.quantity);
    }
    Ok(by_sku.into_iter().collect())
}

/// What units coming back are worth at the payment's prices, after checking that each is
/// a catalogue product the payment sold and that no more come back than were sold and not
/// yet returned. Read inside the refund's transaction, with the payment locked.
pub async fn refund_value(work: &mut Work, p: &Payment, items: &[api::RefundItem]) -> Result<i64, OpError> {
    let sold = sold_lines(p)?;
    let returned = work.units_returned(&p.id).await?;
    let mut value = 0i64;
    for (sku, quantity) in units_of(items)? {
        if work.product_by_sku(&p.merchant_id, &sku).await?.is_none() {
            return Err(bad_items(format!("sku {sku} is not a catalogue product"), Some(&sku)).into());
        }
        let back = returned.iter().find(|(s, _)| *s == sku).map_or(0, |(_, n)| *n);
        let v = catalogue::refund_value(&sold, &sku, quantity, back).map_err(|e| match e {
            CatalogueError::NotSold(_) | CatalogueError::RefundTooMany { .. } => {
                bad_items(e.to_string(), Some(&sku))
            }
            other => bad_items(other.to_string(), None),
        })?;
        value = value.checked_add(v).ok_or_else(|| bad_items("the items' value overflows", None))?;
    }
    Ok(value)
}

/// Every catalogue unit of a payment not returned yet: what a full reversal puts back.
pub async fn unreturned(work: &mut Work, p: &Payment) -> Result<Vec<api::RefundItem>, OpError> {
    let returned = work.units_returned(&p.id).await?;
    let mut out = Vec::new();
    for (sku, units) in catalogue::units_by_sku(&sold_lines(p)?) {
        if work.product_by_sku(&p.merchant_id, &sku).await?.is_none() {
            continue;
        }
        let left = units - returned.iter().find(|(s, _)| *s == sku).map_or(0, |(_, n)| *n);
        if let Ok(quantity) = u32::try_from(left)
            && quantity > 0
        {
            out.push(api::RefundItem { sku, quantity });
        }
    }
    Ok(out)
}

/// Puts a refund's units back into stock inside the refund's transaction, one refund
/// movement per product. `items` were checked by [`refund_value`] (or come from
/// [`unreturned`]).
pub async fn put_back(
    work: &mut Work,
    p: &Payment,
    refund_id: &str,
    items: &[api::RefundItem],
    actor: &str,
    now: &str,
) -> Result<(), OpError> {
    if items.is_empty() {
        return Ok(());
    }
    for (sku, quantity) in units_of(items)? {
        let Some(product) = work.product_by_sku(&p.merchant_id, &sku).await? else { continue };
        let units = i64::from(quantity);
        let stock_after = match product.stock {
            None => None,
            Some(_) => work.move_stock(&product.id, units, now).await?,
        };
        let m = movement(
            &product,
            units,
            "refund",
            stock_after,
            (Some(&p.id), Some(refund_id)),
            None,
            actor,
            now,
        );
        work.insert_stock_movement(&m).await?;
    }
    Ok(())
}

/// A stock movement row.
#[allow(clippy::too_many_arguments)]
pub fn movement(
    product: &saoma_store::ProductRow,
    delta: i64,
    kind: &str,
    stock_after: Option<i64>,
    (payment_id, refund_id): (Option<&str>, Option<&str>),
    reason: Option<&str>,
    actor: &str,
    now: &str,
) -> StockMovementRow {
    StockMovementRow {
        id: new_id(MOVEMENT_PREFIX),
        merchant_id: product.merchant_id.clone(),
        product_id: product.id.clone(),
        sku: product.sku.clone(),
        delta,
        kind: kind.to_string(),
        stock_after,
        payment_id: payment_id.map(str::to_string),
        refund_id: refund_id.map(str::to_string),
        reason: reason.map(str::to_string),
        actor: actor.to_string(),
        created_at: now.to_string(),
    }
}
