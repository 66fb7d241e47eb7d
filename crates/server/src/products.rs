//! The merchant's catalogue: products with price, optional tracked stock, barcode and
//! low-stock threshold, and the stock movements that explain every unit. Managers and
//! the owner write; every key of the merchant, a till's included, reads (the till looks
//! products up by name, sku or scanned barcode).

use crate::audit::Audit;
use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::payments::{OpError, currency_of, retry_on_conflict};
use crate::stock::movement;
use crate::util::{new_id, now, text_field};
use crate::{AppState, work::Work};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::catalogue;
use saoma_store::{AuditRecord, ProductFilter, ProductRow, StockMovementRow};
use serde_json::json;

/// The id prefix of a product.
const PRODUCT_PREFIX: &str = "prd_";

/// A product as the API shows it.
pub fn view(p: &ProductRow) -> api::Product {
    api::Product {
        id: p.id.clone(),
        sku: p.sku.clone(),
        name: p.name.clone(),
        price: p.price,
        currency: p.currency.clone(),
        stock: p.stock,
        barcode: p.barcode.clone(),
        active: p.active != 0,
        low_stock_threshold: p.low_stock_threshold,
        low_stock: catalogue::is_low(p.stock, p.low_stock_threshold),
        created_at: p.created_at.clone(),
        updated_at: p.updated_at.clone(),
    }
}

fn movement_view(m: StockMovementRow) -> api::StockMovement {
    api::StockMovement {
        id: m.id,
        product_id: m.product_id,
        sku: m.sku,
        delta: m.delta,
        kind: m.kind,
        stock_after: m.stock_after,
        payment_id: m.payment_id,
        refund_id: m.refund_id,
        reason: m.reason,
        actor: m.actor,
        created_at: m.created_at,
    }
}

/// Checks every field of a product as it would be saved.
fn check(p: &ProductRow, merchant_currency: &str) -> ApiResult<()> {
    catalogue::check_sku(&p.sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    text_field("name", &p.name, 256)?;
    catalogue::check_price(p.price).map_err(|e| ApiError::invalid("price", e.to_string()))?;
    currency_of(&p.currency)?;
    if p.currency != merchant_currency {
        return Err(ApiError::invalid("currency", format!("this merchant takes {merchant_currency}"))
            .with_code(ErrorCode::CurrencyMismatch));
    }
    if let Some(s) = p.stock {
        catalogue::check_stock(s).map_err(|e| ApiError::invalid("stock", e.to_string()))?;
    }
    if let Some(t) = p.low_stock_threshold {
        catalogue::check_stock(t).map_err(|e| ApiError::invalid("low_stock_threshold", e.to_string()))?;
    }
    if let Some(b) = &p.barcode {
        catalogue::check_barcode(b).map_err(|e| ApiError::invalid("barcode", e.to_string()))?;
    }
    Ok(())
}

/// Refuses a sku or barcode another product of the merchant has.
async fn check_unique(work: &mut Work, p: &ProductRow) -> Result<(), OpError> {
    if work.product_by_sku(&p.merchant_id, &p.sku).await?.is_some_and(|o| o.id != p.id) {
        return Err(ApiError::new(ErrorCode::SkuTaken, format!("another product has sku {}", p.sku)).into());
    }
    if let Some(b) = &p.barcode
        && work.product_by_barcode(&p.merchant_id, b).await?.is_some_and(|o| o.id != p.id)
    {
        return Err(ApiError::new(ErrorCode::BarcodeTaken, format!("another product has barcode {b}")).into());
    }
    Ok(())
}

async fn merchant_currency(state: &AppState, caller: &MerchantCaller) -> ApiResult<String> {
    let m =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    Ok(m.currency)
}

/// `POST /v1/merchant/products` (owner or manager).
#[utoipa::path(
    operation_id = "products_create",
    post,
    path = "/v1/merchant/products",
    tag = "merchant",
    summary = "Adds a product to the catalogue.",
    request_body = saoma_api::CreateProductRequest,
    responses((status = 200, description = "the product", body = saoma_api::Product), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CreateProductRequest>,
) -> ApiResult<Json<api::Product>> {
    caller.require_merchant_key()?;
    let currency = merchant_currency(&state, &caller).await?;
    let (_, now) = now();
    let product = ProductRow {
        id: new_id(PRODUCT_PREFIX),
        merchant_id: caller.merchant_id.clone(),
        sku: req.sku,
        name: req.name,
        price: req.price,
        currency: req.currency,
        stock: req.stock,
        barcode: req.barcode,
        active: i64::from(req.active.unwrap_or(true)),
        low_stock_threshold: req.low_stock_threshold,
        created_at: now.clone(),
        updated_at: now,
    };
    check(&product, &currency)?;
    retry_on_conflict(|| async {
        let mut work = Work::begin(&state).await?;
        check_unique(&mut work, &product).await?;
        work.insert_product(&product).await?;
        if let Some(stock) = product.stock.filter(|s| *s > 0) {
            let m = movement(
                &product,
                stock,
                "initial",
                Some(stock),
                (None, None),
                None,
                &caller.key_id,
                &product.created_at,
            );
            work.insert_stock_movement(&m).await?;
        }
        let audit = AuditRecord {
            actor: &caller.key_id,
            action: "product.create",
            object_id: &product.id,
            detail: json!({"after": view(&product)}),
        };
        work.audit(&audit, &product.created_at).await?;
        work.commit(&state).await?;
        Ok(())
    })
    .await?;
    Ok(Json(view(&product)))
}

fn limit_of(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1-100"));
    }
    Ok(limit)
}

/// `GET /v1/merchant/products`: the catalogue in creation order, filtered by `q` (sku or
/// barcode exactly, or part of the name), `low_stock=true` and `active`.
#[utoipa::path(
    operation_id = "products_list",
    get,
    path = "/v1/merchant/products",
    tag = "merchant",
    summary = "The catalogue.",
    params(api::ProductsQuery),
    responses((status = 200, description = "a page of products", body = saoma_api::Page<saoma_api::Product>)),
    security(("merchant_signature" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<api::ProductsQuery>,
) -> ApiResult<Json<api::Page<api::Product>>> {
    let limit = limit_of(q.limit)?;
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::invalid("q", "q is at most 64 characters"));
    }
    let filter = ProductFilter {
        query: q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()),
        low_stock_only: q.low_stock.unwrap_or(false),
        active: q.active,
    };
    let rows = state.store.products(&caller.merchant_id, &filter, q.cursor.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<api::Product> = rows.iter().take(limit as usize).map(view).collect();
    let next_cursor = if more { data.last().map(|p| p.id.clone()) } else { None };
    Ok(Json(api::Page { data, next_cursor }))
}

async fn own(state: &AppState, caller: &MerchantCaller, id: &str) -> ApiResult<ProductRow> {
    state
        .store
        .product(id)
        .await?
        .filter(|p| p.merchant_id == caller.merchant_id)
        .ok_or_else(|| ApiError::not_found("product"))
}

/// `GET /v1/merchant/products/{id}`.
#[utoipa::path(
    operation_id = "products_get",
    get,
    path = "/v1/merchant/products/{id}",
    tag = "merchant",
    summary = "A product.",
    params(("id" = String, Path, description = "the product's id")),
    responses((status = 200, description = "the product", body = saoma_api::Product)),
    security(("merchant_signature" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Product>> {
    Ok(Json(view(&own(&state, &caller, &id).await?)))
}

/// `PATCH /v1/merchant/products/{id}` (owner or manager). A new `stock` is recorded as
/// an adjustment with the request's `reason`.
#[utoipa::path(
    operation_id = "products_update",
    patch,
    path = "/v1/merchant/products/{id}",
    tag = "merchant",
    summary = "Changes a product.",
    request_body = saoma_api::UpdateProductRequest,
    params(("id" = String, Path, description = "the product's id")),
    responses((status = 200, description = "the product", body = saoma_api::Product), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::UpdateProductRequest>,
) -> ApiResult<Json<api::Product>> {
    caller.require_merchant_key()?;
    if let Some(r) = &req.reason {
        text_field("reason", r, 256)?;
    }
    let currency = merchant_currency(&state, &caller).await?;
    let p = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut work = Work::begin(&state).await?;
        let before = work.product(&id).await?.filter(|p| p.merchant_id == caller.merchant_id);
        let before = before.ok_or_else(|| ApiError::not_found("product"))?;
        let mut p = before.clone();
        if let Some(v) = &req.sku {
            p.sku = v.clone();
        }
        if let Some(v) = &req.name {
            p.name = v.clone();
        }
        if let Some(v) = req.price {
            p.price = v;
        }
        if let Some(v) = &req.currency {
            p.currency = v.clone();
        }
        if let Some(v) = req.stock {
            p.stock = v;
        }
        if let Some(v) = &req.barcode {
            p.barcode = v.clone();
        }
        if let Some(v) = req.active {
            p.active = i64::from(v);
        }
        if let Some(v) = req.low_stock_threshold {
            p.low_stock_threshold = v;
        }
        p.updated_at = now.clone();
        check(&p, &currency)?;
        check_unique(&mut work, &p).await?;
        work.update_product(&p).await?;
        let delta = p.stock.unwrap_or(0) - before.stock.unwrap_or(0);
        if delta != 0 {
            let reason = req.reason.as_deref().unwrap_or("stock set");
            let m =
                movement(&p, delta, "adjustment", p.stock, (None, None), Some(reason), &caller.key_id, &now);
            work.insert_stock_movement(&m).await?;
        }
        let audit = AuditRecord {
            actor: &caller.key_id,
            action: "product.update",
            object_id: &p.id,
            detail: json!({"before": view(&before), "after": view(&p), "reason": req.reason}),
        };
        work.audit(&audit, &now).await?;
        work.commit(&state).await?;
        Ok(p)
    })
    .await?;
    Ok(Json(view(&p)))
}

/// `POST /v1/merchant/products/{id}/adjustments` `{delta, reason}` (owner or manager): a
/// delivery, a breakage, a count. Stock never goes below zero.
#[utoipa::path(
    operation_id = "products_adjust",
    post,
    path = "/v1/merchant/products/{id}/adjustments",
    tag = "merchant",
    summary = "Adjusts a product's stock.",
    request_body = saoma_api::StockAdjustmentRequest,
    params(("id" = String, Path, description = "the product's id")),
    responses((status = 200, description = "the product", body = saoma_api::Product), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn adjust(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::StockAdjustmentRequest>,
) -> ApiResult<Json<api::Product>> {
    caller.require_merchant_key()?;
    text_field("reason", &req.reason, 256)?;
    if req.delta == 0 || req.delta.unsigned_abs() > catalogue::STOCK_MAX.unsigned_abs() {
        return Err(ApiError::invalid("delta", "delta must be non-zero and at most 10^9 units"));
    }
    let p = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut work = Work::begin(&state).await?;
        let p = work.product(&id).await?.filter(|p| p.merchant_id == caller.merchant_id);
        let mut p = p.ok_or_else(|| ApiError::not_found("product"))?;
        if p.stock.is_none() {
            return Err(
                ApiError::new(ErrorCode::StockUntracked, "this product's stock is not tracked").into()
            );
        }
        let after = work.move_stock(&p.id, req.delta, &now).await?;
        let after = after.ok_or_else(|| ApiError::invalid("delta", "stock cannot go below zero"))?;
        let before = p.stock;
        p.stock = Some(after);
        p.updated_at = now.clone();
        let m = movement(
            &p,
            req.delta,
            "adjustment",
            Some(after),
            (None, None),
            Some(&req.reason),
            &caller.key_id,
            &now,
        );
        work.insert_stock_movement(&m).await?;
        let audit = AuditRecord {
            actor: &caller.key_id,
            action: "stock.adjust",
            object_id: &p.id,
            detail: json!({"delta": req.delta, "reason": req.reason, "before": before, "after": after}),
        };
        work.audit(&audit, &now).await?;
        work.commit(&state).await?;
        Ok(p)
    })
    .await?;
    Ok(Json(view(&p)))
}

/// `GET /v1/merchant/products/{id}/movements`: newest first.
#[utoipa::path(
    operation_id = "products_movements",
    get,
    path = "/v1/merchant/products/{id}/movements",
    tag = "merchant",
    summary = "A product's stock movements.",
    params(("id" = String, Path, description = "the product's id"), api::PageQuery),
    responses((status = 200, description = "a page of stock movements, newest first", body = saoma_api::Page<saoma_api::StockMovement>)),
    security(("merchant_signature" = [])),
)]
pub async fn movements(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<api::PageQuery>,
) -> ApiResult<Json<api::Page<api::StockMovement>>> {
    let limit = limit_of(q.limit)?;
    let p = own(&state, &caller, &id).await?;
    let rows = state.store.stock_movements(&p.id, q.cursor.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<api::StockMovement> = rows.into_iter().take(limit as usize).map(movement_view).collect();
    let next_cursor = if more { data.last().map(|m| m.id.clone()) } else { None };
    Ok(Json(api::Page { data, next_cursor }))
}
