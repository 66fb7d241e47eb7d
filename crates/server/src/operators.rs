//! The platform's operators: each has one role (`admin`, `risk_officer`, `support`
//! read-only, `auditor`) and a bearer token kept only as its SHA-256 hash. The start-up
//! `SAOMA_ADMIN_TOKEN` is the first admin. Every change is audited.

use crate::AppState;
use crate::audit::Audit;
use crate::auth::{OPERATOR_ROLES, Operator};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::util::{new_id, now, random_token, sha256_hex, text_field};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_store::{AuditRecord, OperatorRow};
use serde_json::json;

fn view(o: &OperatorRow) -> api::Operator {
    api::Operator {
        id: o.id.clone(),
        name: o.name.clone(),
        role: o.role.clone(),
        created_at: o.created_at.clone(),
        revoked_at: o.revoked_at.clone(),
    }
}

/// `POST /v1/admin/operators` → the operator and its token (shown this once).
#[utoipa::path(
    operation_id = "operators_create",
    post,
    path = "/v1/admin/operators",
    tag = "admin",
    summary = "Adds an operator.",
    request_body = api::NewOperator,
    responses((status = 200, description = "the operator and its token, shown this once", body = api::OperatorCreated)),
    security(("operator_token" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    ApiJson(req): ApiJson<api::NewOperator>,
) -> ApiResult<Json<api::OperatorCreated>> {
    text_field("name", &req.name, 100)?;
    if !OPERATOR_ROLES.contains(&req.role.as_str()) {
        return Err(ApiError::invalid("role", "role is admin, risk_officer, support or auditor"));
    }
    let (_, now) = now();
    let token = random_token("op_");
    let o = OperatorRow {
        id: new_id("opr_"),
        name: req.name.trim().to_string(),
        role: req.role,
        token_hash: sha256_hex(token.as_bytes()),
        created_at: now.clone(),
        revoked_at: None,
    };
    let mut tx = state.store.begin().await?;
    tx.insert_operator(&o).await?;
    let detail = json!({"name": o.name, "role": o.role});
    tx.audit(&AuditRecord { actor: &op.id, action: "operator.create", object_id: &o.id, detail }, &now)
        .await?;
    tx.commit().await?;
    Ok(Json(api::OperatorCreated { operator: view(&o), token }))
}

/// The operators list's cursor: the time and id of the last operator shown.
const OPERATORS: page::Cursor = page::Cursor::of("operators");

/// `GET /v1/admin/operators`: oldest first, a page at a time.
#[utoipa::path(
    operation_id = "operators_list",
    get,
    path = "/v1/admin/operators",
    tag = "admin",
    summary = "The operators.",
    params(saoma_api::PageQuery),
    responses((status = 200, description = "a page of operators", body = api::Page<api::Operator>)),
    security(("operator_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<saoma_api::PageQuery>,
) -> ApiResult<Json<api::Page<api::Operator>>> {
    let limit = page::limit(q.limit, 50)?;
    let after = OPERATORS.read::<2>(q.cursor.as_deref())?;
    let after = after.as_ref().map(|[at, id]| (at.as_str(), id.as_str()));
    let rows = state.store.operators(after, limit + 1).await?;
    let (rows, next_cursor) = OPERATORS.page(rows, limit, |o| vec![&o.created_at, &o.id])?;
    Ok(Json(api::Page { data: rows.iter().map(view).collect(), next_cursor }))
}

/// `POST /v1/admin/operators/{id}/revoke`: the token stops working at once.
#[utoipa::path(
    operation_id = "operators_revoke",
    post,
    path = "/v1/admin/operators/{id}/revoke",
    tag = "admin",
    summary = "Revokes an operator.",
    params(("id" = String, Path, description = "the operator's id")),
    responses((status = 200, description = "the operator's id and when it was revoked", body = api::OperatorRevoked)),
    security(("operator_token" = [])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::OperatorRevoked>> {
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    if !tx.revoke_operator(&id, &now).await? {
        return Err(ApiError::not_found("operator"));
    }
    let detail = json!({});
    tx.audit(&AuditRecord { actor: &op.id, action: "operator.revoke", object_id: &id, detail }, &now).await?;
    tx.commit().await?;
    Ok(Json(api::OperatorRevoked { id, revoked_at: now }))
}
