//! The OpenAPI 3.1 document of the HTTP API, derived from the handlers' annotations and
//! the wire types of `saoma-api`, and served at `/openapi.json` with a reference page at
//! `/docs` (Swagger UI, compiled into the binary: nothing is fetched at run time).
//!
//! The error answers come from the table of codes ([`ErrorCode`]): every operation gets
//! the statuses its callers can meet, each described by the codes it may carry. This
//! module only describes; it must never decide anything a handler does.

use crate::{
    admin, audit, bills, desk, events, keys, merchant, operators, payments, products, qr, receipts, review,
    risk_desk, settlement, wallet, wallet_pay, web, webhooks,
};
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use saoma_api::ErrorCode;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

/// With `out_trade_no`, `GET /v1/payments` answers that payment; without, a page.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PaymentOrPage {
    Payment(Box<saoma_api::Payment>),
    Page(saoma_api::Page<saoma_api::Payment>),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Saoma HTTP API",
        description = "Scan-to-pay: merchants (signed with RFC 9421 HTTP message signatures), \
            wallets (session tokens) and operators (bearer tokens). Money is integer minor units \
            with an ISO 4217 code. Every error is `{\"error\": {code, message, request_id, ...}}`; \
            the `ErrorCode` schema lists every code with its status. See docs/api-notes.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        admin::create_merchant,
        admin::get_merchant,
        admin::create_terminal,
        admin::create_customer,
        admin::top_up,
        admin::trial_balance,
        keys::admin_create,
        keys::admin_list,
        keys::admin_revoke,
        keys::admin_rotate,
        operators::create,
        operators::list,
        operators::revoke,
        receipts::rotate,
        settlement::settle,
        settlement::report,
        settlement::reconcile,
        risk_desk::freeze,
        risk_desk::unfreeze,
        risk_desk::revoke_sessions,
        risk_desk::set_tier,
        risk_desk::get_rules,
        risk_desk::put_rules,
        risk_desk::get_customer,
        risk_desk::decisions,
        audit::verify,
        audit::take_checkpoint,
        desk::audit,
        desk::merchants,
        desk::customers,
        review::get,
        crate::metrics_text,
        payments::create,
        payments::find,
        payments::cancel_by_trade_no,
        payments::get,
        payments::cancel,
        payments::refund,
        receipts::get,
        merchant::static_qr,
        events::stream,
        bills::get,
        webhooks::set_endpoint,
        webhooks::list,
        webhooks::get,
        webhooks::resend,
        keys::own_create,
        keys::own_list,
        keys::own_revoke,
        keys::own_rotate,
        review::apply,
        review::own,
        desk::terminals,
        desk::settlements,
        desk::sales_report,
        products::create,
        products::list,
        products::get,
        products::update,
        products::adjust,
        products::movements,
        wallet::create_session,
        wallet::end_session,
        wallet::get_wallet,
        wallet::issue_code,
        wallet::enroll_device,
        wallet::list_devices,
        wallet::remove_device,
        wallet::device_schedule,
        wallet::receive_code,
        wallet::transactions,
        wallet_pay::resolve_qr,
        wallet_pay::pay_qr,
        wallet_pay::confirm,
        wallet_pay::transfer,
        desk::pending,
        desk::recipient,
        web::merchant_sign_in,
        web::manager_override,
        web::manager_release,
        web::wallet_sign_in,
        web::operator_sign_in,
        web::sign_out,
        crate::healthz,
        receipts::jwks,
        qr::png,
        qr::svg,
        qr::barcode_svg,
        qr::decode,
        review::approve,
        review::reject,
        review::request_info,
        review::suspend,
        review::reinstate
    ),
    components(schemas(ErrorCode, saoma_api::ErrorEnvelope, saoma_api::ErrorBody)),
    modifiers(&SecuritySchemes, &ErrorAnswers, &UniqueOperationIds, &Links),
    tags(
        (name = "merchant", description = "A merchant's back end or till, signed with its key"),
        (name = "wallet", description = "A customer's wallet, with a session token"),
        (name = "admin", description = "The platform's operators, with a bearer token; each route needs one of the roles of docs/security.md"),
        (name = "public", description = "No credentials"),
        (name = "screens", description = "The browser screens' sign-in: cookie sessions with a CSRF token"),
    ),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "operator_token",
            bearer("`Authorization: Bearer <token>`: `SAOMA_ADMIN_TOKEN`, or an operator's token"),
        );
        components.add_security_scheme(
            "wallet_session",
            bearer("`Authorization: Bearer <session token>` from `POST /v1/wallet/session`"),
        );
        components.add_security_scheme(
            "merchant_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Signature",
                "RFC 9421 HTTP message signature, `hmac-sha256` with the key's secret, `keyid` the key's id: \
                 `Signature-Input: sig=(\"@method\" \"@target-uri\" \"content-digest\");created=…;keyid=\"…\";nonce=\"…\"` \
                 and `Signature: sig=:…:`; `content-digest` (RFC 9530, `sha-256`) is covered when there is a body; \
                 `created` within 300 s of the server's clock, each nonce once.",
            ))),
        );
    }
}

/// Statuses every operation may answer, whoever calls it.
const ANY_CALL: &[u16] = &[400, 429, 500, 503];

struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        for status in ErrorCode::statuses() {
            components.responses.insert(error_response_name(status), RefOr::T(ErrorCode::response(status)));
        }
        for item in doc.paths.paths.values_mut() {
            let shared_path_param = has_path_param(&item.parameters);
            for op in operations(item) {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let with_body = op.request_body.is_some();
                let path_param = shared_path_param || has_path_param(&op.parameters);
                let mut statuses: Vec<u16> = ANY_CALL.to_vec();
                if secured {
                    statuses.extend([401, 403]);
                }
                if with_body {
                    statuses.extend([403, 413]);
                }
                if path_param {
                    statuses.push(404);
                }
                // Statuses the annotation named (402 declines, 409 conflicts) keep their place.
                statuses.extend(
                    op.responses.responses.keys().filter_map(|k| k.parse::<u16>().ok()).filter(|s| *s >= 400),
                );
                statuses.sort_unstable();
                statuses.dedup();
                for status in statuses {
                    let reference = utoipa::openapi::Ref::new(format!(
                        "#/components/responses/{}",
                        error_response_name(status)
                    ));
                    op.responses.responses.insert(status.to_string(), RefOr::Ref(reference));
                }
            }
        }
    }
}

/// One handler may serve two methods (`PUT` and `POST /v1/qr/decode`); each operation's id
/// must still be unique, so the second and later get the method appended.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, doc: &mut Document) {
        let mut seen = std::collections::HashSet::new();
        for item in doc.paths.paths.values_mut() {
            let methods = ["get", "put", "post", "delete", "patch"];
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for (method, op) in methods.into_iter().zip(ops) {
                let Some(op) = op.as_mut() else { continue };
                let Some(id) = op.operation_id.clone() else { continue };
                if !seen.insert(id.clone()) {
                    op.operation_id = Some(format!("{id}_{method}"));
                }
            }
        }
    }
}

/// One link: see [`LINKS`].
type Link = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

/// What an answer leads to: (operation, its success status, link name, next operation,
/// the next operation's parameters as runtime expressions on the answer). Clients and
/// stateful testers (schemathesis) follow these: create a payment, then query, cancel,
/// refund it and fetch its receipt.
const LINKS: &[Link] = &[
    ("payments_create", "200", "GetPayment", "payments_get", &[("id", "$response.body#/id")]),
    (
        "payments_create",
        "200",
        "FindPayment",
        "payments_find",
        &[("out_trade_no", "$response.body#/out_trade_no")],
    ),
    ("payments_create", "200", "CancelPayment", "payments_cancel", &[("id", "$response.body#/id")]),
    ("payments_create", "200", "RefundPayment", "payments_refund", &[("id", "$response.body#/id")]),
    ("payments_create", "200", "GetReceipt", "receipts_get", &[("id", "$response.body#/id")]),
    ("payments_get", "200", "CancelPayment", "payments_cancel", &[("id", "$response.body#/id")]),
    ("payments_get", "200", "RefundPayment", "payments_refund", &[("id", "$response.body#/id")]),
    ("products_create", "200", "GetProduct", "products_get", &[("id", "$response.body#/id")]),
    ("products_create", "200", "UpdateProduct", "products_update", &[("id", "$response.body#/id")]),
    ("products_create", "200", "AdjustStock", "products_adjust", &[("id", "$response.body#/id")]),
    ("products_create", "200", "StockMovements", "products_movements", &[("id", "$response.body#/id")]),
    (
        "wallet_enroll_device",
        "200",
        "ScheduleDevice",
        "wallet_device_schedule",
        &[("id", "$response.body#/device_id")],
    ),
    (
        "wallet_enroll_device",
        "200",
        "RemoveDevice",
        "wallet_remove_device",
        &[("id", "$response.body#/device_id")],
    ),
    ("keys_own_create", "200", "RotateKey", "keys_own_rotate", &[("id", "$response.body#/key_id")]),
    ("keys_own_create", "200", "RevokeKey", "keys_own_revoke", &[("id", "$response.body#/key_id")]),
];

/// Declares [`LINKS`] on the answers they start from.
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                let Some(id) = op.operation_id.clone() else { continue };
                for (_, status, name, next, params) in LINKS.iter().filter(|l| l.0 == id) {
                    let Some(RefOr::T(answer)) = op.responses.responses.get_mut(*status) else { continue };
                    let mut link = utoipa::openapi::link::LinkBuilder::new().operation_id(*next);
                    for (param, expression) in params.iter() {
                        link = link.parameter(*param, *expression);
                    }
                    answer.links.insert(name.to_string(), RefOr::T(link.build()));
                }
            }
        }
    }
}

fn has_path_param(params: &Option<Vec<RefOr<Parameter>>>) -> bool {
    params.iter().flatten().any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path)))
}

fn error_response_name(status: u16) -> String {
    format!("Error{status}")
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
        .into_iter()
        .filter_map(|op| op.as_mut())
}

/// The document, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The document as pretty JSON with a final newline: what `docs/openapi.json` holds.
pub fn json() -> String {
    // Serialising a document of strings and maps cannot fail; an empty object if it did.
    let mut text = serde_json::to_string_pretty(document()).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

/// `GET /openapi.json`.
pub async fn serve_json() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(json).clone();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// The page's policy: Swagger UI's own files only, and calls to this origin.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// `GET /docs`: to `/docs/`, so the page's relative links resolve under it.
pub async fn docs_root() -> Redirect {
    Redirect::permanent("/docs/")
}

/// `GET /docs/` and its files.
pub async fn docs_index() -> Response {
    docs_file("")
}

/// `GET /docs/{*file}`.
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    docs_file(&file)
}

fn docs_file(file: &str) -> Response {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")));
    match utoipa_swagger_ui::serve(file, config.clone()) {
        Ok(Some(f)) => {
            let mut response = (StatusCode::OK, f.bytes.into_owned()).into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&f.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if f.gzpipped {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            response
        }
        Ok(None) => crate::ApiError::not_found("file").into_response(),
        Err(e) => crate::ApiError::internal(e).into_response(),
    }
}
