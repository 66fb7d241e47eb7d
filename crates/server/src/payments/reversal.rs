//! Undoing a payment: the till's cancel (a reversal within the operator's window), and
//! refunds of an amount or of catalogue units, each in one transaction.

use super::*;

/// Refuses a till's reversal of a paid sale once the operator's window after the charge
/// has passed: from then on it is a refund, which needs a manager or merchant key.
fn check_reversal_window(
    state: &AppState,
    caller: &MerchantCaller,
    p: &Payment,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<()> {
    if caller.terminal_id.is_none() {
        return Ok(());
    }
    let window = state.config.terminal_reversal_window;
    let paid_at = match p.paid_at.as_deref() {
        None => None,
        Some(t) => Some(chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
            StoreError::Corrupt(format!("payment {} has an unreadable payment time {t:?}", p.id))
        })?),
    };
    let within = paid_at.is_some_and(|paid| {
        chrono::Duration::from_std(window).is_ok_and(|w| now.signed_duration_since(paid) <= w)
    });
    if within {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "a till may reverse a paid sale only within {} s of the charge; refund it with a manager or merchant key",
        window.as_secs()
    ))
    .with_code(ErrorCode::ReversalWindowClosed))
}

/// Reverses a payment inside `work`: pending → closed, succeeded → fully refunded (by a
/// till only within the reversal window).
async fn reverse(
    state: &AppState,
    work: &mut Work,
    p: &mut Payment,
    merchant_name: &str,
    caller: &MerchantCaller,
    (t, now): (chrono::DateTime<chrono::Utc>, &str),
) -> Result<(), OpError> {
    let actor = caller.key_id.as_str();
    match p.status() {
        PaymentStatus::Pending => close(work, p, actor, "cancelled", now).await?,
        PaymentStatus::Succeeded => {
            check_reversal_window(state, caller, p, t)?;
            let remaining = p.amount.checked_sub(p.refunded).map_err(ApiError::internal)?;
            // A reversed sale never happened: every unit sold comes back to stock.
            let items = crate::stock::unreturned(work, p).await?;
            let refund = RefundAsk {
                out_refund_no: &format!("cancel-{}", p.id),
                amount_minor: remaining.amount_minor(),
                reason: Some("payment cancelled".into()),
                actor,
                items: &items,
            };
            refund_in_tx(state, work, p, merchant_name, &refund, now).await?;
        }
        PaymentStatus::Failed | PaymentStatus::Closed | PaymentStatus::Refunded => {}
    }
    Ok(())
}

/// `POST /v1/payments/{id}/cancel`.
#[utoipa::path(
    operation_id = "payments_cancel",
    post,
    path = "/v1/payments/{id}/cancel",
    tag = "merchant",
    summary = "Reverses a sale: closes a pending payment, refunds a paid one.",
    params(("id" = String, Path, description = "the payment's id")),
    responses((status = 200, description = "the payment, closed or refunded", body = saoma_api::Payment), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let p = retry_on_conflict(|| async {
        let (t, now) = now();
        let mut work = Work::begin(&state).await?;
        let mut p = visible(&caller, work.payment(&id).await?)?;
        reverse(&state, &mut work, &mut p, &merchant.name, &caller, (t, &now)).await?;
        work.commit(&state).await?;
        Ok(p)
    })
    .await?;
    Ok(Json(views::payment(&p, Some((&merchant, &state.qr_seed())))?).into_response())
}

/// `POST /v1/payments/cancel` `{out_trade_no}`: for a POS that never saw the creation's
/// answer. With no such payment yet, the number is recorded as closed, so a charge that
/// arrives late with it is refused.
#[utoipa::path(
    operation_id = "payments_cancel_by_trade_no",
    post,
    path = "/v1/payments/cancel",
    tag = "merchant",
    summary = "Reverses a sale by `out_trade_no`.",
    request_body = saoma_api::CancelByTradeNoRequest,
    responses((status = 200, description = "the payment, closed or refunded", body = saoma_api::Payment), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn cancel_by_trade_no(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CancelByTradeNoRequest>,
) -> ApiResult<Response> {
    client_key("out_trade_no", &req.out_trade_no)?;
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let currency = currency_of(&merchant.currency)?;
    let p = retry_on_conflict(|| async {
        let (t, now) = now();
        let mut work = Work::begin(&state).await?;
        let p = match work.payment_by_trade_no(&caller.merchant_id, &req.out_trade_no).await? {
            Some(p) => {
                let mut p = visible(&caller, Some(p))?;
                reverse(&state, &mut work, &mut p, &merchant.name, &caller, (t, &now)).await?;
                p
            }
            None => {
                let mut p = Payment::pending(Order {
                    id: new_id(prefix::PAYMENT),
                    merchant_id: caller.merchant_id.clone(),
                    terminal_id: caller.terminal_id.clone(),
                    out_trade_no: req.out_trade_no.clone(),
                    amount: Money::zero(currency),
                    subject: "cancelled before creation".into(),
                    items: "[]".into(),
                    mode: PaymentMode::Cpm,
                    fingerprint: None,
                    created_at: now.clone(),
                });
                p.close().map_err(ApiError::internal)?;
                work.insert_payment(&p).await?;
                let audit = AuditRecord {
                    actor: &caller.key_id,
                    action: "payment.close",
                    object_id: &p.id,
                    detail: json!({"reason": "cancelled before creation"}),
                };
                work.audit(&audit, &now).await?;
                p
            }
        };
        work.commit(&state).await?;
        Ok(p)
    })
    .await?;
    Ok(Json(views::payment(&p, Some((&merchant, &state.qr_seed())))?).into_response())
}

/// What a refund asks for.
struct RefundAsk<'a> {
    out_refund_no: &'a str,
    amount_minor: i64,
    reason: Option<String>,
    actor: &'a str,
    /// Units coming back to stock.
    items: &'a [api::RefundItem],
}

/// Refunds part of a payment inside `work` and returns the refund row.
async fn refund_in_tx(
    state: &AppState,
    work: &mut Work,
    p: &mut Payment,
    merchant_name: &str,
    ask: &RefundAsk<'_>,
    now: &str,
) -> Result<RefundRow, OpError> {
    crate::auth::refuse_suspended(work, &p.merchant_id).await?;
    let amount = money_of(ask.amount_minor, p.amount.currency())?;
    let decision = payment::decide_refund(p.refundable(), amount).map_err(|e| match e {
        RefundError::NotRefundable(_) => ApiError::new(ErrorCode::PaymentNotRefundable, e.to_string()),
        RefundError::ExceedsPayment { .. } => ApiError::new(ErrorCode::RefundExceedsPayment, e.to_string()),
        RefundError::Money(m) => ApiError::invalid("amount", m.to_string()),
    })?;
    let customer_id =
        p.customer_id.clone().ok_or_else(|| StoreError::Corrupt("paid payment without customer".into()))?;
    let entry = ledger::refund_entry(&customer_id, &p.merchant_id, amount, decision.fee_returned)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let refund = RefundRow {
        id: new_id(prefix::REFUND),
        payment_id: p.id.clone(),
        merchant_id: p.merchant_id.clone(),
        out_refund_no: ask.out_refund_no.to_string(),
        amount: ask.amount_minor,
        currency: p.amount.currency().code().to_string(),
        fee_returned: decision.fee_returned.amount_minor(),
        status: "succeeded".into(),
        reason: ask.reason.clone(),
        created_at: now.to_string(),
    };
    work.insert_refund(&refund).await?;
    let before = json!({"status": p.status().as_str(), "refunded_amount": p.refunded.amount_minor()});
    p.apply_refund(&decision).map_err(|e| ApiError::new(ErrorCode::PaymentNotRefundable, e.to_string()))?;
    work.update_payment(p).await?;
    // Posted last: the merchant's ledger rows are then held only for the audit head and
    // the commit.
    work.post_entry(&new_id(prefix::ENTRY), "refund", &refund.id, &entry, now).await?;
    crate::stock::put_back(work, p, &refund.id, ask.items, ask.actor, now).await?;
    crate::receipts::issue(&state.keys.sealer, work, p, merchant_name, Some(&refund), now, None).await?;
    let data = json!({"refund": views::refund(&refund), "payment": views::payment(p, None)?});
    let scope = (Some(p.merchant_id.as_str()), p.terminal_id.as_deref());
    emit(work, "refund.succeeded", scope, Some(&customer_id), data, now).await?;
    let audit = AuditRecord {
        actor: ask.actor,
        action: "refund.create",
        object_id: &refund.id,
        detail: json!({"payment_id": p.id, "amount": ask.amount_minor, "before": before,
            "after": {"status": p.status().as_str(), "refunded_amount": p.refunded.amount_minor()}}),
    };
    work.audit(&audit, now).await?;
    work.on_commit(Effect::RefundSucceeded);
    Ok(refund)
}

/// `POST /v1/payments/{id}/refunds`: a merchant key only.
#[utoipa::path(
    operation_id = "payments_refund",
    post,
    path = "/v1/payments/{id}/refunds",
    tag = "merchant",
    summary = "Refunds a payment in part or in full.",
    request_body = saoma_api::CreateRefundRequest,
    params(("id" = String, Path, description = "the payment's id")),
    responses((status = 200, description = "the refund", body = saoma_api::Refund), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn refund(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::CreateRefundRequest>,
) -> ApiResult<Response> {
    caller.require_merchant_key()?;
    client_key("out_refund_no", &req.out_refund_no)?;
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 256) {
        return Err(ApiError::invalid("reason", "reason is at most 256 characters"));
    }
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let r = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut work = Work::begin(&state).await?;
        let mut p = visible(&caller, work.payment(&id).await?)?;
        if let Some(existing) = work.refund_by_no(&caller.merchant_id, &req.out_refund_no).await? {
            // A refund of items may leave the amount out: it was their value then.
            let same_amount = existing.amount == req.amount || (req.amount == 0 && req.items.is_some());
            if existing.payment_id != p.id || !same_amount {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "out_refund_no was already used with other parameters",
                )
                .into());
            }
            return Ok(existing);
        }
        let items = req.items.as_deref().unwrap_or_default();
        let amount_minor = match req.items {
            Some(_) => refund_amount(req.amount, crate::stock::refund_value(&mut work, &p, items).await?)?,
            None => req.amount,
        };
        let ask = RefundAsk {
            out_refund_no: &req.out_refund_no,
            amount_minor,
            reason: req.reason.clone(),
            actor: &caller.key_id,
            items,
        };
        let r = refund_in_tx(&state, &mut work, &mut p, &merchant.name, &ask, &now).await?;
        work.commit(&state).await?;
        Ok(r)
    })
    .await?;
    Ok(Json(views::refund(&r)).into_response())
}

/// A refund of items: their value, which a given amount must equal.
fn refund_amount(given: i64, value: i64) -> ApiResult<i64> {
    if given != 0 && given != value {
        let mut e = ApiError::new(
            ErrorCode::AmountMismatch,
            format!("amount {given} differs from the items' value {value}"),
        );
        e.param = Some("amount");
        return Err(e);
    }
    Ok(value)
}
