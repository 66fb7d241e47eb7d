//! Creating a payment: a charge of the customer's payment code at a till, or a dynamic
//! merchant code the customer scans; a retry answers the payment the first try made.

use super::*;

/// What a request asks for, hashed: a retry under the same order number must ask the same.
fn fingerprint(req: &api::CreatePaymentRequest, terminal_id: Option<&str>) -> String {
    let canonical = json!({"req": req, "terminal": terminal_id});
    sha256_hex(canonical.to_string().as_bytes())
}

/// When a pending payment closes by itself.
fn pending_until(t: chrono::DateTime<chrono::Utc>, expires_in: Option<i64>) -> String {
    rfc3339(t + chrono::Duration::seconds(expires_in.unwrap_or(PENDING_TTL_SECONDS)))
}

fn validate_create(req: &api::CreatePaymentRequest) -> ApiResult<Money> {
    client_key("out_trade_no", &req.out_trade_no)?;
    let subject_len = req.subject.chars().count();
    if subject_len == 0 || subject_len > 256 {
        return Err(ApiError::invalid("subject", "subject must be 1-256 characters"));
    }
    let amount = money_of(req.amount, currency_of(&req.currency)?)?;
    if let Some(items) = &req.items {
        if items.len() > 100 {
            return Err(ApiError::invalid("items", "at most 100 items"));
        }
        for item in items {
            let name_len = item.name.chars().count();
            if name_len == 0 || name_len > 256 || item.quantity == 0 || item.unit_amount < 0 {
                return Err(ApiError::invalid(
                    "items",
                    "each item needs a name (1-256), quantity ≥ 1, unit_amount ≥ 0",
                ));
            }
        }
    }
    if let Some(e) = req.expires_in
        && !(1..=86_400).contains(&e)
    {
        return Err(ApiError::invalid("expires_in", "expires_in must be 1-86400 seconds"));
    }
    Ok(amount)
}

/// `POST /v1/payments`.
#[utoipa::path(
    operation_id = "payments_create",
    post,
    path = "/v1/payments",
    tag = "merchant",
    summary = "Creates a payment: charges a scanned payment code, or issues a dynamic code.",
    request_body = saoma_api::CreatePaymentRequest,
    responses((status = 200, description = "the payment: `succeeded`, or `pending` (a dynamic code, or waiting for the customer's PIN)", body = saoma_api::Payment), (status = 402, description = "error"), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CreatePaymentRequest>,
) -> ApiResult<Response> {
    // The fingerprint is of the request as sent, so a retry matches after a price change.
    let fp = fingerprint(&req, caller.terminal_id.as_deref());
    let req = crate::stock::priced(&state, &caller.merchant_id, req).await?;
    let amount = validate_create(&req)?;
    let merchant = callers_merchant(&state, &caller).await?;
    if amount.currency().code() != merchant.currency {
        return Err(ApiError::invalid("currency", format!("this merchant takes {}", merchant.currency))
            .with_code(ErrorCode::CurrencyMismatch));
    }
    if req.payment_code.is_some() {
        guesses::ensure_counters(&state, &caller).await?;
    }
    let p = retry_on_conflict(|| create_once(&state, &caller, &merchant, &req, amount, &fp)).await?;
    Ok(answer(&state, &p, &merchant))
}

/// The order a merchant's request asks to be paid.
fn order_of(
    caller: &MerchantCaller,
    req: &api::CreatePaymentRequest,
    amount: Money,
    fp: &str,
    mode: PaymentMode,
    now: &str,
) -> ApiResult<Order> {
    let items: &[api::Item] = req.items.as_deref().unwrap_or_default();
    Ok(Order {
        id: new_id(prefix::PAYMENT),
        merchant_id: caller.merchant_id.clone(),
        terminal_id: caller.terminal_id.clone(),
        out_trade_no: req.out_trade_no.clone(),
        amount,
        subject: req.subject.clone(),
        items: serde_json::to_string(items).map_err(ApiError::internal)?,
        mode,
        fingerprint: Some(fp.to_string()),
        created_at: now.to_string(),
    })
}

async fn existing_or_none(
    work: &mut Work,
    merchant_id: &str,
    otn: &str,
    fp: &str,
) -> Result<Option<Payment>, OpError> {
    match work.payment_by_trade_no(merchant_id, otn).await? {
        None => Ok(None),
        Some(p) if p.fingerprint.is_none() => Err(ApiError::new(
            ErrorCode::PaymentClosed,
            "this out_trade_no was cancelled before it was charged; use a new one",
        )
        .into()),
        Some(p) if p.fingerprint.as_deref() != Some(fp) => Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            "out_trade_no was already used with other parameters",
        )
        .into()),
        Some(p) => Ok(Some(p)),
    }
}

async fn create_once(
    state: &AppState,
    caller: &MerchantCaller,
    merchant: &MerchantRow,
    req: &api::CreatePaymentRequest,
    amount: Money,
    fp: &str,
) -> Result<Payment, OpError> {
    let (t, now) = now();
    // A scan's payment, its receipt and its code's look-up are made before the
    // transaction: the signing and the reads then hold up no other payment (on SQLite, no
    // other writer).
    let scanned = match &req.payment_code {
        None => None,
        Some(code) => {
            let mut p = Payment::pending(order_of(caller, req, amount, fp, PaymentMode::Cpm, &now)?);
            p.expires_at = Some(pending_until(t, req.expires_in));
            let receipt = crate::receipts::presign(state, &p, &merchant.name, &now).await?;
            // Its error waits: a retry answers the stored payment whatever the look-up met.
            let checks = check_scan(state, code, t, &now).await;
            Some((code, p, receipt, checks))
        }
    };
    let mut work = Work::begin(state).await?;
    if let Some(p) = existing_or_none(&mut work, &merchant.id, &req.out_trade_no, fp).await? {
        return Ok(p);
    }
    let p = match scanned {
        None => create_dynamic(&mut work, caller, req, amount, fp, t, &now).await?,
        Some((code, p, receipt, checks)) => {
            let scan = Scan { caller, merchant, code, t, checks: checks? };
            charge_scanned(state, &mut work, &scan, (p, receipt), &now).await?
        }
    };
    work.commit(state).await?;
    Ok(p)
}

/// Merchant-presented: a dynamic code the customer scans.
async fn create_dynamic(
    work: &mut Work,
    caller: &MerchantCaller,
    req: &api::CreatePaymentRequest,
    amount: Money,
    fp: &str,
    t: chrono::DateTime<chrono::Utc>,
    now: &str,
) -> Result<Payment, OpError> {
    let mut p = Payment::pending(order_of(caller, req, amount, fp, PaymentMode::Mpm, now)?);
    p.qr_ref = Some(ulid::Ulid::new().to_string().chars().skip(6).collect());
    p.expires_at = Some(pending_until(t, req.expires_in));
    work.insert_payment(&p).await?;
    let audit = AuditRecord {
        actor: &caller.key_id,
        action: "payment.create",
        object_id: &p.id,
        detail: json!({"mode": "mpm", "amount": amount.amount_minor()}),
    };
    work.audit(&audit, now).await?;
    Ok(p)
}

/// A till's scan of a customer's payment code.
struct Scan<'a> {
    caller: &'a MerchantCaller,
    merchant: &'a MerchantRow,
    code: &'a str,
    t: chrono::DateTime<chrono::Utc>,
    checks: ScanChecks,
}

/// What a scan reads before its transaction begins, from committed rows: the risk rules
/// and an online code. Neither needs a lock: an online code's customer never changes,
/// and the code is spent inside the transaction by an insert that finds it spent when a
/// concurrent scan got there first. Read before the transaction, these reads do not hold
/// SQLite's one writer. Looked up inside the transaction, as before: an offline code (its
/// device can be revoked meanwhile, a phone reported lost) and the till's velocity (on
/// SQLite both then see everything committed ahead of this payment).
struct ScanChecks {
    rules: std::sync::Arc<Rules>,
    /// An online code as found; `None` for an offline code.
    found: Option<Found>,
}

/// A scanned code as found: who pays with it, or (`Err`) why it is no good.
type Found = Result<codes::ResolvedCode, &'static str>;

/// The reads of a scan that need no transaction ([`ScanChecks`]).
async fn check_scan(
    state: &AppState,
    code: &str,
    t: chrono::DateTime<chrono::Utc>,
    now: &str,
) -> Result<ScanChecks, OpError> {
    let rules = risk::rules(state).await?;
    let found = match codes::is_offline(code) {
        true => None,
        false => Some(look_up(state, code, t, now).await?),
    };
    Ok(ScanChecks { rules, found })
}

/// Resolves a scanned code, and whether it was used already.
async fn look_up(
    state: &AppState,
    code: &str,
    t: chrono::DateTime<chrono::Utc>,
    now: &str,
) -> Result<Found, OpError> {
    Ok(match codes::resolve(state, code, now, t.timestamp()).await? {
        Ok(r) if code_used(state, &r).await? => Err("payment_code_used"),
        other => other,
    })
}

/// Consumer-presented: the till scanned the customer's code. The till's own checks come
/// first (a blocked till spends no code and counts no guess), then the code (an online
/// one was looked up before the transaction), then the one charge service.
/// `p`: the new pending payment; `receipt`: its receipt, signed ahead.
async fn charge_scanned(
    state: &AppState,
    work: &mut Work,
    s: &Scan<'_>,
    (mut p, receipt): (Payment, Option<Box<crate::receipts::Presigned>>),
    now: &str,
) -> Result<Payment, OpError> {
    let rules = &s.checks.rules;
    let till = s.caller.terminal_id.as_deref().unwrap_or(&s.caller.key_id);
    let refused = match &s.caller.terminal_id {
        Some(terminal) => risk::check_terminal(state, rules, terminal, s.t).await?.err(),
        None => None,
    };
    let payer = match refused {
        Some(d) => Err(d),
        None => scanned_payer(state, work, s, now).await?,
    };
    let payer = match payer {
        Ok(payer) => payer,
        Err(d) => {
            charge::decline(work, Some((&mut p, false, OnDecline::FailPayment)), &d, (till, rules), now)
                .await?;
            return Ok(p);
        }
    };
    let c = Charge {
        payer: &payer,
        amount: p.amount,
        pin: PinProof::Absent,
        count_velocity: true,
        rules,
        actor: &s.caller.key_id,
    };
    let payee = Payee::Merchant {
        payment: &mut p,
        merchant: s.merchant,
        stored: false,
        on_decline: OnDecline::FailPayment,
        receipt,
    };
    // Every outcome is written by the service: charged, waiting for the PIN, or failed.
    charge::charge(state, work, &c, payee, now).await?;
    Ok(p)
}

/// Who pays with the scanned code (looked at before anything is locked or spent; an
/// online code before the transaction: [`check_scan`]), or why nobody does; a bad code is
/// counted against the caller (`crate::guesses`).
async fn scanned_payer(
    state: &AppState,
    work: &mut Work,
    s: &Scan<'_>,
    now: &str,
) -> Result<Result<CustomerRow, Decline>, OpError> {
    let rules = &s.checks.rules;
    let offline;
    let found = match &s.checks.found {
        Some(found) => found,
        None => {
            offline = look_up(state, s.code, s.t, now).await?;
            &offline
        }
    };
    let bad = found.is_err();
    if let Some(d) = guesses::blocked(work, s.caller, rules, s.t, bad).await? {
        return Ok(Err(d));
    }
    match found {
        Err(failure) => {
            guesses::count_bad(work, s.caller, rules, s.t).await?;
            Ok(Err(Decline::plain(failure)))
        }
        // Two scans of one good code at once: the loser is declined, not counted as a guess.
        Ok(r) => Ok(payer(work, r).await?.ok_or_else(|| Decline::plain("payment_code_used"))),
    }
}

/// Whether a resolved code was used already, asked only if its look-up did not tell.
async fn code_used(state: &AppState, code: &codes::ResolvedCode) -> Result<bool, StoreError> {
    match code.used {
        Some(used) => Ok(used),
        None => state.store.code_used(&code.code_hash).await,
    }
}

/// Consumes a good code inside `work` and loads who pays with it; `None` when a
/// concurrent scan spent it first.
async fn payer(work: &mut Work, code: &codes::ResolvedCode) -> Result<Option<CustomerRow>, OpError> {
    Ok(work.spend_code(&code.code_hash, &code.customer_id, &now().1).await?)
}
