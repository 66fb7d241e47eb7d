//! Merchant review (KYC): the merchant applies with its legal name, licence, owner
//! identity and documents (by hash); the operator approves, rejects with a reason or asks
//! for more; suspends and reinstates. The transitions are `saoma_core::merchant`'s; every
//! decision is audited with before, after and reason.

use crate::audit::Audit;
use crate::auth::{MerchantCaller, Operator};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::util::{now, text_field};
use crate::{AppState, views};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::merchant::{self as review, Review};
use saoma_store::{AuditRecord, MerchantApplicationRow, StoreError};
use serde_json::json;

fn check(a: &api::Application) -> ApiResult<()> {
    text_field("legal_name", &a.legal_name, 200)?;
    text_field("owner_name", &a.owner_name, 100)?;
    if !review::valid_licence_number(&a.licence_number) {
        return Err(ApiError::invalid("licence_number", "licence_number is 5-32 of A-Z, 0-9 and -"));
    }
    if !review::valid_id_number(&a.owner_id_number) {
        return Err(ApiError::invalid("owner_id_number", "owner_id_number is 5-32 of A-Z and 0-9"));
    }
    if a.documents.is_empty() || a.documents.len() > 10 {
        return Err(ApiError::invalid("documents", "give 1-10 documents"));
    }
    for d in &a.documents {
        if !review::DOCUMENT_KINDS.contains(&d.kind.as_str()) {
            return Err(ApiError::invalid(
                "documents",
                format!("kind is one of {:?}", review::DOCUMENT_KINDS),
            ));
        }
        if !review::valid_sha256(&d.sha256) {
            return Err(ApiError::invalid("documents", "sha256 is 64 lower-case hex digits"));
        }
    }
    if !a.documents.iter().any(|d| d.kind == "business_licence") {
        return Err(ApiError::invalid("documents", "the business licence is required"));
    }
    Ok(())
}

/// An application as the operator and the merchant see it: the identity number masked. A
/// document list that does not parse is a damaged row: an error, not an empty list.
fn view(a: MerchantApplicationRow) -> ApiResult<api::ApplicationView> {
    let documents: Vec<api::Document> = serde_json::from_str(&a.documents).map_err(|e| {
        StoreError::Corrupt(format!("the application of {} has damaged documents: {e}", a.merchant_id))
    })?;
    Ok(api::ApplicationView {
        merchant_id: a.merchant_id,
        legal_name: a.legal_name,
        licence_number: a.licence_number,
        owner_name: a.owner_name,
        owner_id_number: a.id_number_tail,
        documents,
        status: a.status,
        reason: a.reason,
        submitted_at: a.submitted_at,
        decided_at: a.decided_at,
        decided_by: a.decided_by,
    })
}

fn not_now(status: &str, event: Review) -> ApiError {
    ApiError::new(ErrorCode::InvalidTransition, format!("a merchant that is {status} cannot take {event:?}"))
}

/// `PUT /v1/merchant/application` (owner key): applies, or applies again after a
/// rejection or a request for more.
#[utoipa::path(
    operation_id = "review_apply",
    put,
    path = "/v1/merchant/application",
    tag = "merchant",
    summary = "Submits the merchant's application.",
    request_body = api::Application,
    responses((status = 200, description = "the application, submitted", body = api::ApplicationView), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn apply(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::Application>,
) -> ApiResult<Json<api::ApplicationView>> {
    caller.require_owner()?;
    check(&req)?;
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let m = tx.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let after =
        review::next_status(&m.status, Review::Apply).ok_or_else(|| not_now(&m.status, Review::Apply))?;
    let documents = serde_json::to_string(&req.documents).map_err(ApiError::internal)?;
    let a = MerchantApplicationRow {
        merchant_id: m.id.clone(),
        legal_name: req.legal_name.trim().to_string(),
        licence_number: req.licence_number,
        owner_name: req.owner_name.trim().to_string(),
        owner_id_number: state
            .keys
            .sealer
            .seal(crate::secrets::Place::owner_id_number(&m.id), &req.owner_id_number),
        id_number_tail: review::masked_id_number(&req.owner_id_number),
        documents,
        status: "submitted".into(),
        reason: None,
        submitted_at: now.clone(),
        decided_at: None,
        decided_by: None,
    };
    tx.put_application(&a).await?;
    tx.set_merchant_status(&m.id, after).await?;
    let detail = json!({"before": m.status, "after": after, "licence_number": a.licence_number});
    let audit = AuditRecord { actor: &caller.key_id, action: "merchant.apply", object_id: &m.id, detail };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Ok(Json(view(a)?))
}

/// `GET /v1/merchant/application` (merchant or manager key).
#[utoipa::path(
    operation_id = "review_own",
    get,
    path = "/v1/merchant/application",
    tag = "merchant",
    summary = "The merchant's application.",
    responses(
        (status = 200, description = "the application", body = api::ApplicationView),
        (status = 404, description = "the merchant has no application"),
    ),
    security(("merchant_signature" = [])),
)]
pub async fn own(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
) -> ApiResult<Json<api::ApplicationView>> {
    caller.require_merchant_key()?;
    let a = state.store.application(&caller.merchant_id).await?;
    Ok(Json(view(a.ok_or_else(|| ApiError::not_found("application"))?)?))
}

/// `GET /v1/admin/merchants/{id}/application`.
#[utoipa::path(
    operation_id = "review_get",
    get,
    path = "/v1/admin/merchants/{id}/application",
    tag = "admin",
    summary = "A merchant's application.",
    params(("id" = String, Path, description = "the merchant's id")),
    responses((status = 200, description = "the merchant's application", body = api::ApplicationView)),
    security(("operator_token" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::ApplicationView>> {
    let a = state.store.application(&id).await?;
    Ok(Json(view(a.ok_or_else(|| ApiError::not_found("application"))?)?))
}

/// Applies an operator's decision: the merchant's status, the application's, the audit.
async fn decide(
    state: &AppState,
    op: &Operator,
    id: &str,
    event: Review,
    reason: Option<String>,
) -> ApiResult<Json<api::Merchant>> {
    if let Some(r) = &reason {
        text_field("reason", r, 500)?;
    }
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut m = tx.merchant(id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let after = review::next_status(&m.status, event).ok_or_else(|| not_now(&m.status, event))?;
    let mut application = tx.application(id).await?;
    if let (Some(a), Some(a_after)) = (application.as_mut(), review::application_status(event)) {
        if a.status != "submitted" {
            return Err(ApiError::new(
                ErrorCode::ApplicationNotSubmitted,
                format!("the application is {}: wait for the merchant to apply again", a.status),
            ));
        }
        a.status = a_after.to_string();
        a.reason = reason.clone();
        a.decided_at = Some(now.clone());
        a.decided_by = Some(op.id.clone());
        tx.put_application(a).await?;
    }
    tx.set_merchant_status(id, after).await?;
    let detail = json!({"before": m.status, "after": after, "reason": reason,
        // An operator may approve a merchant verified outside Saoma; the record says so.
        "application": application.as_ref().map(|a| a.submitted_at.clone())});
    let action = match event {
        Review::Approve => "merchant.approve",
        Review::Reject => "merchant.reject",
        Review::RequestInfo => "merchant.request_info",
        Review::Suspend => "merchant.suspend",
        Review::Reinstate => "merchant.reinstate",
        Review::Apply => "merchant.apply",
    };
    tx.audit(&AuditRecord { actor: &op.id, action, object_id: id, detail }, &now).await?;
    tx.commit().await?;
    m.status = after.to_string();
    Ok(Json(views::merchant(&m)?))
}

fn reason_of(body: &Bytes) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let r: api::ReviewReason = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}")))?;
    Ok(r.reason)
}

fn required(reason: Option<String>) -> ApiResult<Option<String>> {
    match reason {
        Some(r) if !r.trim().is_empty() => Ok(Some(r)),
        _ => Err(ApiError::invalid("reason", "a reason is required")),
    }
}

macro_rules! decision {
    ($name:ident, $event:expr, $needs_reason:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            operation_id = concat!("review_", stringify!($name)),
            path = $path,
            tag = "admin",
            summary = $doc,
            request_body(content = Option<api::ReviewReason>, description = "`{reason}`, required to reject, ask for information or reinstate"),
            params(("id" = String, Path, description = "the merchant's id")),
            responses((status = 200, description = "the merchant", body = saoma_api::Merchant), (status = 409, description = "error")),
            security(("operator_token" = [])),
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(op): Extension<Operator>,
            Path(id): Path<String>,
            body: Bytes,
        ) -> ApiResult<Json<api::Merchant>> {
            let reason = reason_of(&body)?;
            let reason = if $needs_reason { required(reason)? } else { reason };
            decide(&state, &op, &id, $event, reason).await
        }
    };
}

decision!(
    approve,
    Review::Approve,
    false,
    "/v1/admin/merchants/{id}/approve",
    "`POST /v1/admin/merchants/{id}/approve` `{reason?}`."
);
decision!(
    reject,
    Review::Reject,
    true,
    "/v1/admin/merchants/{id}/reject",
    "`POST /v1/admin/merchants/{id}/reject` `{reason}`."
);
decision!(
    request_info,
    Review::RequestInfo,
    true,
    "/v1/admin/merchants/{id}/request-info",
    "`POST /v1/admin/merchants/{id}/request-info` `{reason}`."
);
decision!(
    suspend,
    Review::Suspend,
    false,
    "/v1/admin/merchants/{id}/suspend",
    "`POST /v1/admin/merchants/{id}/suspend` `{reason?}`."
);
decision!(
    reinstate,
    Review::Reinstate,
    true,
    "/v1/admin/merchants/{id}/reinstate",
    "`POST /v1/admin/merchants/{id}/reinstate` `{reason}`."
);
