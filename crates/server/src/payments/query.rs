//! Finding payments (one, by order number, or a page) with long-poll, and closing the
//! pending ones whose time is up, on a look and by the sweep.

use super::*;

/// Closes a pending payment whose time is up, and returns it as it now stands.
async fn expire_if_due(state: &AppState, p: Payment) -> ApiResult<Payment> {
    let (_, now) = now();
    if !due(&p, &now) {
        return Ok(p);
    }
    let mut work = Work::begin(state).await?;
    let Some(mut fresh) = work.payment(&p.id).await? else { return Ok(p) };
    if due(&fresh, &now) {
        close(&mut work, &mut fresh, "system", "expired", &now).await.map_err(op_error)?;
        work.commit(state).await?;
    }
    Ok(fresh)
}

/// Closes, every `every`, the pending payments whose time is up, with their
/// `payment.closed` event and webhook. Each is closed under its row lock after a fresh
/// look, so across nodes every payment closes exactly once.
pub fn spawn_expiry_sweep(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = state.stopping() => return,
            }
            if let Err(e) = sweep_once(&state).await {
                tracing::warn!(error = %e.message, "Could not close expired payments.");
            }
        }
    });
}

/// One pass of the expiry sweep; the number of payments it closed.
async fn sweep_once(state: &AppState) -> ApiResult<usize> {
    const BATCH: i64 = 100;
    let (t, now) = now();
    // Unknown phones' lockouts (see `pin`) are kept a month after their last guess.
    state.store.forget_strangers(&rfc3339(t - chrono::Duration::days(30)), &now).await?;
    let mut closed = 0;
    for id in state.store.overdue_payments(&now, BATCH).await? {
        let mut work = Work::begin(state).await?;
        let Some(mut p) = work.payment(&id).await? else { continue };
        if due(&p, &now) {
            close(&mut work, &mut p, "system", "expired", &now).await.map_err(op_error)?;
            work.commit(state).await?;
            closed += 1;
        }
    }
    Ok(closed)
}

async fn load_and_wait(
    state: &AppState,
    caller: &MerchantCaller,
    id: &str,
    wait: Option<u64>,
) -> ApiResult<Payment> {
    let wait = wait.unwrap_or(0);
    if wait > 30 {
        return Err(ApiError::invalid("wait", "wait is at most 30 seconds"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let notified = state.changed.notified();
        let p = expire_if_due(state, visible(caller, state.store.payment(id).await?)?).await?;
        if p.status() != PaymentStatus::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(p);
        }
        // Woken by a local commit, or look again soon for one made on another node.
        let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
    }
}

/// `GET /v1/payments/{id}`.
#[utoipa::path(
    operation_id = "payments_get",
    get,
    path = "/v1/payments/{id}",
    tag = "merchant",
    summary = "A payment; `?wait=N` long-polls while it is pending.",
    params(("id" = String, Path, description = "the payment's id"), api::PaymentsQuery),
    responses((status = 200, description = "the payment", body = saoma_api::Payment)),
    security(("merchant_signature" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<api::PaymentsQuery>,
) -> ApiResult<Response> {
    let p = load_and_wait(&state, &caller, &id, q.wait).await?;
    let merchant = state.store.merchant(&p.merchant_id).await?;
    let seed = state.qr_seed();
    Ok(Json(views::payment(&p, merchant.as_ref().map(|m| (m, &seed)))?).into_response())
}

/// The payments list's cursor: the id of the last payment shown (ids grow with time).
const PAYMENTS: page::Cursor = page::Cursor::of("payments");

/// `GET /v1/payments?out_trade_no=...` (one payment) or a page of payments, newest first.
#[utoipa::path(
    operation_id = "payments_find",
    get,
    path = "/v1/payments",
    tag = "merchant",
    summary = "Finds a payment by `out_trade_no`, or lists payments.",
    params(api::PaymentsQuery),
    responses(
        (status = 200, description = "with `out_trade_no`: that payment; without: a page of payments, newest first", body = crate::openapi::PaymentOrPage),
        (status = 404, description = "no payment of the caller's with that `out_trade_no`"),
    ),
    security(("merchant_signature" = [])),
)]
pub async fn find(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<api::PaymentsQuery>,
) -> ApiResult<Response> {
    let merchant = state.store.merchant(&caller.merchant_id).await?;
    let seed = state.qr_seed();
    if let Some(otn) = &q.out_trade_no {
        let p = visible(&caller, state.store.payment_by_trade_no(&caller.merchant_id, otn).await?)?;
        let p = load_and_wait(&state, &caller, &p.id, q.wait).await?;
        return Ok(Json(views::payment(&p, merchant.as_ref().map(|m| (m, &seed)))?).into_response());
    }
    let limit = page::limit(q.limit, 20)?;
    let before = PAYMENTS.read::<1>(q.cursor.as_deref())?;
    let before = before.as_ref().map(|[id]| id.as_str());
    let rows = state
        .store
        .payments_of_merchant(&caller.merchant_id, caller.terminal_id.as_deref(), before, limit + 1)
        .await?;
    let (rows, next_cursor) = PAYMENTS.page(rows, limit, |p| vec![&p.id])?;
    let data: Vec<api::Payment> = rows
        .iter()
        .map(|p| views::payment(p, merchant.as_ref().map(|m| (m, &seed))))
        .collect::<Result<_, _>>()?;
    Ok(Json(api::Page { data, next_cursor }).into_response())
}
