//! The screens, served by the server itself: `/` (links to the four), `/pos` (the till),
//! `/wallet` (the customer, phone-sized), `/merchant` (the back office), `/console` (the
//! operator). Each is a server-side template (minijinja) in the visitor's language (the
//! `lang` cookie or `?lang=`, else the browser's `Accept-Language`), with the page's own
//! script; the scripts call the same `/v1` API as any client, with the page's cookie and
//! its CSRF token. No business rule lives in a page.
//!
//! Templates, scripts, styles and the vendored libraries (jsQR, Chart.js; see
//! `web/package.json`) are compiled into the binary: nothing is fetched at run time.
//! Pages run under a strict content security policy: scripts and styles only from this
//! origin, no inline script.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery;
use crate::web::{self, MERCHANT_COOKIE, OPERATOR_COOKIE, WALLET_COOKIE};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The policy every page is served with.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; media-src 'self' blob: mediastream:; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Static files: (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("scan.js", "text/javascript; charset=utf-8", include_bytes!("../assets/scan.js")),
    ("pos.js", "text/javascript; charset=utf-8", include_bytes!("../assets/pos.js")),
    ("wallet.js", "text/javascript; charset=utf-8", include_bytes!("../assets/wallet.js")),
    ("merchant.js", "text/javascript; charset=utf-8", include_bytes!("../assets/merchant.js")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../assets/console.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../assets/favicon.svg")),
    ("vendor/jsQR.js", "text/javascript; charset=utf-8", include_bytes!("../assets/vendor/jsQR.js")),
    (
        "vendor/chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/chart.umd.min.js"),
    ),
];

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("forms.html", include_str!("../templates/forms.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("pos.html", include_str!("../templates/pos.html")),
    ("wallet.html", include_str!("../templates/wallet.html")),
    ("merchant.html", include_str!("../templates/merchant.html")),
    ("console.html", include_str!("../templates/console.html")),
];

/// The languages the pages speak.
const LANGUAGES: &[&str] = &["en", "zh"];

fn strings() -> &'static Value {
    static STRINGS: OnceLock<Value> = OnceLock::new();
    STRINGS.get_or_init(|| {
        serde_json::from_str(include_str!("../assets/i18n.json"))
            .expect("assets/i18n.json is JSON (a unit test renders every page with it)")
    })
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are constants of this crate; a unit test renders each one.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "A page template does not parse.");
            }
        }
        env
    })
}

/// `GET /assets/{*path}`: an embedded file, cacheable for a day.
pub async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, kind, bytes)) => {
            let headers = [(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "public, max-age=86400")];
            (headers, *bytes).into_response()
        }
        None => ApiError::not_found("asset").into_response(),
    }
}

/// `?lang=` of a page.
#[derive(Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
}

/// The page's language: `?lang=`, the `lang` cookie, else the browser's first choice we speak.
fn language(q: &PageQuery, headers: &HeaderMap) -> &'static str {
    let pick = |s: &str| LANGUAGES.iter().copied().find(|l| s.trim().to_lowercase().starts_with(l));
    if let Some(l) = q.lang.as_deref().and_then(pick) {
        return l;
    }
    if let Some(l) = web::cookie(headers, "lang").and_then(pick) {
        return l;
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.split(',').filter_map(|part| pick(part.split(';').next().unwrap_or(""))).next().unwrap_or("en")
}

/// Renders a page in `lang` with the strings of that language and `extra`.
fn render(name: &str, lang: &str, csrf: Option<String>, extra: Value, set_lang: bool) -> ApiResult<Response> {
    let t = strings().get(lang).cloned().unwrap_or(Value::Null);
    let mut ctx = json!({"lang": lang, "t": t, "csrf": csrf, "signed_in": csrf.is_some(), "page": name});
    if let (Some(map), Value::Object(more)) = (ctx.as_object_mut(), extra) {
        map.extend(more);
    }
    let html = env()
        .get_template(&format!("{name}.html"))
        .and_then(|t| t.render(&ctx))
        .map_err(ApiError::internal)?;
    let mut r = Html(html).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"));
    if set_lang
        && let Ok(v) =
            HeaderValue::from_str(&format!("lang={lang}; Path=/; SameSite=Strict; Max-Age=31536000"))
    {
        h.insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `GET /`: the four screens.
pub async fn index(ApiQuery(q): ApiQuery<PageQuery>, headers: HeaderMap) -> ApiResult<Response> {
    render("index", language(&q, &headers), None, json!({}), q.lang.is_some())
}

/// What the till and back office show of the signed-in key and its merchant.
async fn merchant_context(state: &AppState, headers: &HeaderMap) -> ApiResult<Value> {
    let caller = match web::merchant_caller(state, &axum::http::Method::GET, headers).await {
        Ok(Some(c)) => c,
        _ => return Ok(json!({})),
    };
    let m =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let terminal = match &caller.terminal_id {
        Some(t) => state.store.terminal(t).await?.map(|t| t.name),
        None => None,
    };
    let exponent = crate::views::merchant_currency(&m)?.exponent();
    Ok(json!({"merchant": {"id": m.id, "name": m.name, "currency": m.currency, "exponent": exponent,
        "timezone": m.timezone, "status": m.status},
        "key": {"id": caller.key_id, "role": caller.role, "terminal_id": caller.terminal_id, "terminal": terminal}}))
}

async fn page(
    state: &AppState,
    name: &str,
    cookie: &str,
    q: &PageQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let lang = language(q, headers);
    let csrf = web::page_csrf(state, headers, cookie).await?;
    let extra = if csrf.is_some() && cookie == MERCHANT_COOKIE {
        merchant_context(state, headers).await?
    } else {
        json!({})
    };
    render(name, lang, csrf, extra, q.lang.is_some())
}

/// `GET /pos`: the till.
pub async fn pos(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    page(&state, "pos", MERCHANT_COOKIE, &q, &headers).await
}

/// `GET /wallet`: the customer's wallet.
pub async fn wallet(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    page(&state, "wallet", WALLET_COOKIE, &q, &headers).await
}

/// `GET /merchant`: the back office.
pub async fn merchant(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    page(&state, "merchant", MERCHANT_COOKIE, &q, &headers).await
}

/// `GET /console`: the operator's console.
pub async fn console(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    page(&state, "console", OPERATOR_COOKIE, &q, &headers).await
}

/// `GET /favicon.ico`: the browser's default icon request.
pub async fn favicon() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/assets/favicon.svg")]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_in_every_language() {
        let s = strings();
        let en = s["en"].as_object().expect("en strings");
        for lang in LANGUAGES {
            let other = s[*lang].as_object().expect("strings of every language");
            let missing: Vec<&String> = en.keys().filter(|k| !other.contains_key(*k)).collect();
            let extra: Vec<&String> = other.keys().filter(|k| !en.contains_key(*k)).collect();
            assert!(missing.is_empty() && extra.is_empty(), "{lang}: missing {missing:?}, extra {extra:?}");
        }
    }

    #[test]
    fn every_page_renders_in_every_language() {
        for (name, _) in TEMPLATES.iter().filter(|(n, _)| *n != "base.html") {
            let name = name.trim_end_matches(".html");
            for lang in LANGUAGES {
                for csrf in [None, Some("t".to_string())] {
                    let extra = json!({"merchant": {"name": "M", "currency": "CNY", "exponent": 2},
                        "key": {"role": "merchant"}});
                    let t = strings().get(*lang).cloned().unwrap_or(Value::Null);
                    let mut ctx = json!({"lang": lang, "t": t, "csrf": csrf, "signed_in": csrf.is_some()});
                    if let (Some(map), Value::Object(more)) = (ctx.as_object_mut(), extra) {
                        map.extend(more);
                    }
                    let tpl = env().get_template(&format!("{name}.html"));
                    let r = tpl.and_then(|t| t.render(&ctx));
                    assert!(r.is_ok(), "{name} in {lang} does not render: {r:?}");
                }
            }
        }
    }

    #[test]
    fn the_language_follows_the_query_then_the_cookie_then_the_browser() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("zh-CN,zh;q=0.9,en;q=0.8"));
        assert_eq!(language(&PageQuery { lang: None }, &h), "zh");
        assert_eq!(language(&PageQuery { lang: Some("en".into()) }, &h), "en");
        h.insert(header::COOKIE, HeaderValue::from_static("lang=en"));
        assert_eq!(language(&PageQuery { lang: None }, &h), "en");
        assert_eq!(language(&PageQuery { lang: None }, &HeaderMap::new()), "en");
    }
}
