//! The operator's API: merchants and their review status, terminals, keys, customers,
//! top-ups, and the trial balance.

use crate::audit::Audit;
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::payments::{OpError, currency_of, money_of, retry_on_conflict};
use crate::util::{new_id, now, text_field};
use crate::{AppState, views};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::ids::prefix;
use saoma_core::ledger;
use saoma_store::{AuditRecord, CustomerRow, MerchantRow, TopUpRow};
use serde_json::json;

/// `POST /v1/admin/merchants`.
#[utoipa::path(
    operation_id = "admin_create_merchant",
    post,
    path = "/v1/admin/merchants",
    tag = "admin",
    summary = "Onboards a merchant.",
    request_body = saoma_api::CreateMerchantRequest,
    responses((status = 200, description = "the merchant, pending review", body = saoma_api::Merchant)),
    security(("operator_token" = [])),
)]
pub async fn create_merchant(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    ApiJson(req): ApiJson<api::CreateMerchantRequest>,
) -> ApiResult<Json<api::Merchant>> {
    text_field("name", &req.name, 100)?;
    text_field("city", &req.city, 60)?;
    if req.mcc.len() != 4 || !req.mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("mcc", "mcc is 4 digits (ISO 18245)"));
    }
    if req.country.len() != 2 || !req.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid("country", "country is an ISO 3166 alpha-2 code such as CN"));
    }
    currency_of(&req.currency)?;
    if req.fee_bps > 10_000 {
        return Err(ApiError::invalid("fee_bps", "fee_bps is 0-10000"));
    }
    let timezone = req.timezone.clone().unwrap_or_else(|| "UTC".into());
    text_field("timezone", &timezone, 64)?;
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::invalid("timezone", "timezone is an IANA name such as Asia/Shanghai"));
    }
    let (_, now) = now();
    let m = MerchantRow {
        id: new_id(prefix::MERCHANT),
        name: req.name.trim().to_string(),
        mcc: req.mcc,
        city: req.city.trim().to_string(),
        country: req.country,
        currency: req.currency,
        fee_bps: i64::from(req.fee_bps),
        timezone,
        status: "pending_review".into(),
        created_at: now.clone(),
    };
    let mut tx = state.store.begin().await?;
    tx.insert_merchant(&m).await?;
    tx.audit(
        &AuditRecord {
            actor: &op.id,
            action: "merchant.create",
            object_id: &m.id,
            detail: json!({"name": m.name}),
        },
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(views::merchant(&m)?))
}

/// `GET /v1/admin/merchants/{id}`.
#[utoipa::path(
    operation_id = "admin_get_merchant",
    get,
    path = "/v1/admin/merchants/{id}",
    tag = "admin",
    summary = "A merchant.",
    params(("id" = String, Path, description = "the merchant's id")),
    responses((status = 200, description = "the merchant", body = saoma_api::Merchant)),
    security(("operator_token" = [])),
)]
pub async fn get_merchant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Merchant>> {
    let m = state.store.merchant(&id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    Ok(Json(views::merchant(&m)?))
}

/// `POST /v1/admin/merchants/{id}/terminals`.
#[utoipa::path(
    operation_id = "admin_create_terminal",
    post,
    path = "/v1/admin/merchants/{id}/terminals",
    tag = "admin",
    summary = "Adds a terminal (till) to a merchant.",
    request_body = saoma_api::CreateTerminalRequest,
    params(("id" = String, Path, description = "the merchant's id")),
    responses((status = 200, description = "the terminal", body = saoma_api::Terminal)),
    security(("operator_token" = [])),
)]
pub async fn create_terminal(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::CreateTerminalRequest>,
) -> ApiResult<Json<api::Terminal>> {
    text_field("name", &req.name, 100)?;
    state.store.merchant(&id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let (_, now) = now();
    let terminal_id = new_id(prefix::TERMINAL);
    let mut tx = state.store.begin().await?;
    tx.insert_terminal(&terminal_id, &id, &req.name, &now).await?;
    tx.audit(
        &AuditRecord {
            actor: &op.id,
            action: "terminal.create",
            object_id: &terminal_id,
            detail: json!({"merchant_id": id}),
        },
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(api::Terminal { id: terminal_id, merchant_id: id, name: req.name }))
}

/// Checks a PIN's form: 6 digits, as wallets ask for.
pub fn valid_pin(pin: &str) -> bool {
    pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())
}

/// `POST /v1/admin/customers`.
#[utoipa::path(
    operation_id = "admin_create_customer",
    post,
    path = "/v1/admin/customers",
    tag = "admin",
    summary = "Opens a customer's wallet.",
    request_body = saoma_api::CreateCustomerRequest,
    responses((status = 200, description = "the customer", body = saoma_api::Customer), (status = 409, description = "error")),
    security(("operator_token" = [])),
)]
pub async fn create_customer(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    ApiJson(req): ApiJson<api::CreateCustomerRequest>,
) -> ApiResult<Json<api::Customer>> {
    let phone_ok = (6..=16).contains(&req.phone.len())
        && req.phone.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit());
    if !phone_ok {
        return Err(ApiError::invalid("phone", "phone is 6-15 digits, optionally with a leading +"));
    }
    text_field("name", &req.name, 100)?;
    if !valid_pin(&req.pin) {
        return Err(ApiError::invalid("pin", "pin is 6 digits"));
    }
    let tier = req.tier.clone().unwrap_or_else(|| saoma_core::risk::DEFAULT_TIER.to_string());
    if !crate::risk::rules(&state).await?.tiers.contains_key(&tier) {
        return Err(ApiError::invalid("tier", "no such tier in the risk rules"));
    }
    let pin_hash = crate::pin::hash_pin(&req.pin)?;
    let (_, now) = now();
    let c = CustomerRow {
        id: new_id(prefix::CUSTOMER),
        phone: req.phone,
        name: req.name,
        pin_hash,
        pin_failures: 0,
        pin_locks: 0,
        pin_locked_until: None,
        frozen: 0,
        created_at: now.clone(),
        tier,
    };
    let mut tx = state.store.begin().await?;
    match tx.insert_customer(&c).await {
        Err(saoma_store::StoreError::UniqueViolation) => {
            return Err(ApiError::new(ErrorCode::PhoneTaken, "a customer with this phone exists"));
        }
        other => other?,
    }
    tx.audit(
        &AuditRecord { actor: &op.id, action: "customer.create", object_id: &c.id, detail: json!({}) },
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(views::customer(c)))
}

/// `POST /v1/admin/customers/{id}/topups`: cash-in, idempotent on `reference`.
#[utoipa::path(
    operation_id = "admin_top_up",
    post,
    path = "/v1/admin/customers/{id}/topups",
    tag = "admin",
    summary = "Cash-in, idempotent on `reference`.",
    request_body = saoma_api::TopUpRequest,
    params(("id" = String, Path, description = "the customer's id")),
    responses((status = 200, description = "the top-up (the same one again for a repeated reference)", body = saoma_api::TopUp), (status = 409, description = "error")),
    security(("operator_token" = [])),
)]
pub async fn top_up(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::TopUpRequest>,
) -> ApiResult<Json<api::TopUp>> {
    let amount = money_of(req.amount, currency_of(&req.currency)?)?;
    text_field("reference", &req.reference, 255)?;
    state.store.customer(&id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let t = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut tx = state.store.begin().await?;
        if let Some(existing) = tx.top_up_by_reference(&req.reference).await? {
            if existing.customer_id != id
                || existing.amount != req.amount
                || existing.currency != req.currency
            {
                return Err(OpError::Api(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "reference was already used with other parameters",
                )));
            }
            return Ok(existing);
        }
        let t = TopUpRow {
            id: new_id(prefix::TOP_UP),
            customer_id: id.clone(),
            reference: req.reference.clone(),
            amount: req.amount,
            currency: req.currency.clone(),
            created_at: now.clone(),
        };
        tx.insert_top_up(&t).await?;
        let entry = ledger::top_up_entry(&id, amount).map_err(ApiError::internal)?;
        tx.post_entry(&new_id(prefix::ENTRY), "top_up", &t.id, &entry, &now).await?;
        tx.audit(
            &AuditRecord {
                actor: &op.id,
                action: "top_up.create",
                object_id: &t.id,
                detail: json!({"amount": t.amount, "currency": t.currency}),
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(t)
    })
    .await?;
    Ok(Json(api::TopUp {
        id: t.id,
        customer_id: t.customer_id,
        amount: t.amount,
        currency: t.currency,
        reference: t.reference,
        created_at: t.created_at,
    }))
}

/// `GET /v1/admin/ledger/trial-balance`: also false when any account's balance disagrees
/// with the sum of its postings.
#[utoipa::path(
    operation_id = "admin_trial_balance",
    get,
    path = "/v1/admin/ledger/trial-balance",
    tag = "admin",
    summary = "The ledger's trial balance.",
    responses((status = 200, description = "debits and credits per currency", body = saoma_api::TrialBalance)),
    security(("operator_token" = [])),
)]
pub async fn trial_balance(State(state): State<AppState>) -> ApiResult<Json<api::TrialBalance>> {
    let rows = state.store.trial_balance().await?;
    let drift = state.store.accounts_out_of_step().await?;
    let currencies: Vec<api::TrialBalanceLine> = rows
        .into_iter()
        .map(|r| api::TrialBalanceLine {
            currency: r.currency,
            debits: r.debits,
            credits: r.credits,
            balanced: r.debits == r.credits,
        })
        .collect();
    let balanced = drift.is_empty() && currencies.iter().all(|c| c.balanced);
    Ok(Json(api::TrialBalance { currencies, balanced }))
}
