//! The risk officer's desk: the rules, freezing and unfreezing wallets, moving customers
//! between tiers, and the declines kept for explanation. Every change is audited with
//! its before and after.

use crate::audit::Audit;
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::risk::{self, RULES_SETTING};
use crate::util::{now, text_field};
use crate::{AppState, views};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_core::risk::Rules;
use saoma_store::AuditRecord;
use serde_json::json;

/// `GET /v1/admin/risk/rules`.
#[utoipa::path(
    operation_id = "risk_desk_get_rules",
    get,
    path = "/v1/admin/risk/rules",
    tag = "admin",
    summary = "The risk rules.",
    responses((status = 200, description = "the risk rules", body = api::RiskRules)),
    security(("operator_token" = [])),
)]
pub async fn get_rules(State(state): State<AppState>) -> ApiResult<Json<api::RiskRules>> {
    Ok(Json((*risk::rules(&state).await?).clone().into()))
}

/// `PUT /v1/admin/risk/rules`: replaces the rule set; `version` is assigned. Every node
/// uses the new rules within two seconds.
#[utoipa::path(
    operation_id = "risk_desk_put_rules",
    put,
    path = "/v1/admin/risk/rules",
    tag = "admin",
    summary = "Replaces the risk rules.",
    request_body = api::RiskRules,
    responses((status = 200, description = "the risk rules as saved", body = api::RiskRules)),
    security(("operator_token" = [])),
)]
pub async fn put_rules(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    ApiJson(rules): ApiJson<api::RiskRules>,
) -> ApiResult<Json<api::RiskRules>> {
    let mut rules = Rules::from(rules);
    rules.validate().map_err(|e| ApiError::invalid("rules", e.to_string()))?;
    let (_, now) = now();
    let default = serde_json::to_string(&Rules::default()).map_err(ApiError::internal)?;
    let mut tx = state.store.begin().await?;
    let before = risk::parse(&tx.setting_or_init(RULES_SETTING, &default).await?)?;
    rules.version = before.version + 1;
    let text = serde_json::to_string(&rules).map_err(ApiError::internal)?;
    tx.set_setting(RULES_SETTING, &text).await?;
    let audit = AuditRecord {
        actor: &op.id,
        action: "risk.rules",
        object_id: RULES_SETTING,
        detail: json!({"before": before, "after": rules}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    state.risk_rules.remember(rules.clone());
    Ok(Json(rules.into()))
}

/// `GET /v1/admin/customers/{id}`.
#[utoipa::path(
    operation_id = "risk_desk_get_customer",
    get,
    path = "/v1/admin/customers/{id}",
    tag = "admin",
    summary = "A customer.",
    params(("id" = String, Path, description = "the customer's id")),
    responses((status = 200, description = "the customer", body = saoma_api::Customer)),
    security(("operator_token" = [])),
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Customer>> {
    let c = state.store.customer(&id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(Json(views::customer(c)))
}

async fn set_frozen(
    state: &AppState,
    op: &Operator,
    id: &str,
    frozen: bool,
    reason: &str,
) -> ApiResult<Json<api::Customer>> {
    text_field("reason", reason, 500)?;
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut c = tx.customer(id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let before = c.frozen != 0;
    tx.set_customer_frozen(id, frozen).await?;
    let audit = AuditRecord {
        actor: &op.id,
        action: if frozen { "wallet.freeze" } else { "wallet.unfreeze" },
        object_id: id,
        detail: json!({"before": {"frozen": before}, "after": {"frozen": frozen}, "reason": reason.trim()}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    c.frozen = i64::from(frozen);
    Ok(Json(views::customer(c)))
}

/// `POST /v1/admin/customers/{id}/freeze` `{reason}`: the wallet can no longer pay or
/// transfer; it can still receive money and refunds.
#[utoipa::path(
    operation_id = "risk_desk_freeze",
    post,
    path = "/v1/admin/customers/{id}/freeze",
    tag = "admin",
    summary = "Freezes a wallet.",
    request_body = api::RiskReason,
    params(("id" = String, Path, description = "the customer's id")),
    responses((status = 200, description = "the customer", body = saoma_api::Customer)),
    security(("operator_token" = [])),
)]
pub async fn freeze(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::RiskReason>,
) -> ApiResult<Json<api::Customer>> {
    set_frozen(&state, &op, &id, true, &req.reason).await
}

/// `POST /v1/admin/customers/{id}/unfreeze` `{reason}`.
#[utoipa::path(
    operation_id = "risk_desk_unfreeze",
    post,
    path = "/v1/admin/customers/{id}/unfreeze",
    tag = "admin",
    summary = "Unfreezes a wallet.",
    request_body = api::RiskReason,
    params(("id" = String, Path, description = "the customer's id")),
    responses((status = 200, description = "the customer", body = saoma_api::Customer)),
    security(("operator_token" = [])),
)]
pub async fn unfreeze(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::RiskReason>,
) -> ApiResult<Json<api::Customer>> {
    set_frozen(&state, &op, &id, false, &req.reason).await
}

/// `POST /v1/admin/customers/{id}/sessions/revoke` `{reason}`: signs the customer out
/// everywhere (a stolen phone) and revokes every enrolled device, whose offline codes are
/// refused from then on; the PIN is needed to sign in and enrol again.
#[utoipa::path(
    operation_id = "risk_desk_revoke_sessions",
    post,
    path = "/v1/admin/customers/{id}/sessions/revoke",
    tag = "admin",
    summary = "Signs a customer out everywhere.",
    request_body = api::RiskReason,
    params(("id" = String, Path, description = "the customer's id")),
    responses((status = 200, description = "how many sessions and devices were ended", body = api::SessionsRevoked)),
    security(("operator_token" = [])),
)]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::RiskReason>,
) -> ApiResult<Json<api::SessionsRevoked>> {
    text_field("reason", &req.reason, 500)?;
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    tx.customer(&id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let ended = tx.delete_sessions_of(&id).await?;
    let devices = tx.revoke_devices(&id, None, &now).await?;
    let detail = json!({"sessions_ended": ended, "devices_revoked": devices, "reason": req.reason.trim()});
    tx.audit(&AuditRecord { actor: &op.id, action: "wallet.sessions_revoke", object_id: &id, detail }, &now)
        .await?;
    tx.commit().await?;
    Ok(Json(api::SessionsRevoked { customer_id: id, sessions_ended: ended, devices_revoked: devices }))
}

/// `PUT /v1/admin/customers/{id}/tier` `{tier}`.
#[utoipa::path(
    operation_id = "risk_desk_set_tier",
    put,
    path = "/v1/admin/customers/{id}/tier",
    tag = "admin",
    summary = "Sets a customer's risk tier.",
    request_body = api::TierChange,
    params(("id" = String, Path, description = "the customer's id")),
    responses((status = 200, description = "the customer", body = saoma_api::Customer)),
    security(("operator_token" = [])),
)]
pub async fn set_tier(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::TierChange>,
) -> ApiResult<Json<api::Customer>> {
    if !risk::rules(&state).await?.tiers.contains_key(&req.tier) {
        return Err(ApiError::invalid("tier", "no such tier in the risk rules"));
    }
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut c = tx.customer(&id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    tx.set_customer_tier(&id, &req.tier).await?;
    let audit = AuditRecord {
        actor: &op.id,
        action: "customer.tier",
        object_id: &id,
        detail: json!({"before": c.tier, "after": req.tier}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    c.tier = req.tier;
    Ok(Json(views::customer(c)))
}

/// The decisions list's cursor: the time and id of the last decision shown.
const DECISIONS: page::Cursor = page::Cursor::of("risk_decisions");

/// `GET /v1/admin/risk/decisions`: declines, newest first, each with the rule that fired,
/// what it observed, the threshold and the rules' version.
#[utoipa::path(
    operation_id = "risk_desk_decisions",
    get,
    path = "/v1/admin/risk/decisions",
    tag = "admin",
    summary = "Risk decisions (declines).",
    params(api::RiskDecisionsQuery),
    responses((status = 200, description = "a page of risk decisions, newest first", body = api::Page<api::RiskDecision>)),
    security(("operator_token" = [])),
)]
pub async fn decisions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<api::RiskDecisionsQuery>,
) -> ApiResult<Json<api::Page<api::RiskDecision>>> {
    let limit = page::limit(q.limit, 50)?;
    let before = DECISIONS.read::<2>(q.cursor.as_deref())?;
    let before = before.as_ref().map(|[at, id]| (at.as_str(), id.as_str()));
    let rows = state
        .store
        .risk_decisions(q.subject_id.as_deref(), q.payment_id.as_deref(), before, limit + 1)
        .await?;
    let (rows, next_cursor) = DECISIONS.page(rows, limit, |d| vec![&d.created_at, &d.id])?;
    let data = rows
        .into_iter()
        .map(|d| api::RiskDecision {
            id: d.id,
            subject_id: d.subject_id,
            payment_id: d.payment_id,
            code: d.code,
            rule: d.rule,
            observed: d.observed,
            threshold: d.threshold,
            rules_version: d.rules_version,
            created_at: d.created_at,
        })
        .collect();
    Ok(Json(api::Page { data, next_cursor }))
}
