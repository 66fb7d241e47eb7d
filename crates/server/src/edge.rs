//! What every request passes first: the per-address rate limit, the cross-site request
//! check, and the security headers on every answer.
//!
//! Cross-site requests: the API's own credentials (bearer tokens, signatures) are never
//! sent by a browser on its own, but the screens' session cookies are (`web.rs`, which
//! also demands a CSRF token). So a state-changing request that a browser marks as coming from
//! another site (`Sec-Fetch-Site`, or an `Origin` that is not this server's) is refused
//! 403 `csrf_rejected`, whatever its credentials. Tills, CLIs and servers send neither
//! header and are not affected.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use saoma_api::ErrorCode;
use std::net::{IpAddr, SocketAddr};

/// The client's address: the peer, or, when the peer is one of the operator's trusted
/// proxies, the right-most `X-Forwarded-For` address that is not one of them (the left
/// part of that header is whatever the client chose to send).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<IpAddr> =
        forwarded.flat_map(|v| v.split(',')).filter_map(|h| h.trim().parse().ok()).collect();
    hops.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer)
}

/// True when a browser says this request comes from another site.
fn cross_site(method: &Method, headers: &HeaderMap, scheme: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin != format!("{scheme}://{host}"),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

const HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// The rate limit per address and the cross-site check (inside the request-id layer, so
/// their refusals get the error envelope).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_address(c.0.ip(), req.headers(), &state.config.trusted_proxies));
    if let Some(ip) = peer {
        state.limits.check_ip(ip)?;
    }
    if cross_site(req.method(), req.headers(), &state.config.public_scheme) {
        return Err(ApiError::forbidden("cross-site request refused").with_code(ErrorCode::CsrfRejected));
    }
    // No text the server stores or looks up may hold NUL (PostgreSQL refuses it).
    if req.uri().to_string().to_ascii_lowercase().contains("%00") {
        return Err(ApiError::invalid("path", "the address may not contain NUL (%00)"));
    }
    // Audit records written while serving this request say where it came from.
    Ok(crate::audit::PEER.scope(peer.map(|ip| ip.to_string()), next.run(req)).await)
}

/// The security headers (outermost, so error answers get them too).
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    // Pages set their own policy and caching; API answers and images get the strictest.
    if !headers.contains_key("content-security-policy") {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    if state.config.public_scheme == "https" {
        headers.insert("strict-transport-security", HeaderValue::from_static("max-age=31536000"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn browsers_from_other_sites_are_refused_and_tills_are_not() {
        let post = Method::POST;
        assert!(!cross_site(&post, &map(&[]), "https"), "a till sends no browser headers");
        assert!(!cross_site(&post, &map(&[("sec-fetch-site", "same-origin")]), "https"));
        assert!(cross_site(&post, &map(&[("sec-fetch-site", "cross-site")]), "https"));
        assert!(cross_site(&post, &map(&[("sec-fetch-site", "same-site")]), "https"));
        let own = map(&[("origin", "https://pay.example"), ("host", "pay.example")]);
        assert!(!cross_site(&post, &own, "https"));
        let evil = map(&[("origin", "https://evil.example"), ("host", "pay.example")]);
        assert!(cross_site(&post, &evil, "https"));
        assert!(!cross_site(&Method::GET, &evil, "https"), "reads change nothing");
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = [ip("10.0.0.5")];
        let fwd = map(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        assert_eq!(
            client_address(ip("10.0.0.5"), &fwd, &trusted),
            ip("203.0.113.7"),
            "the hop the proxy saw"
        );
        assert_eq!(client_address(ip("198.51.100.1"), &fwd, &trusted), ip("198.51.100.1"), "untrusted peer");
        let chain = map(&[("x-forwarded-for", "203.0.113.7, 10.0.0.5")]);
        assert_eq!(client_address(ip("10.0.0.5"), &chain, &trusted), ip("203.0.113.7"));
        assert_eq!(client_address(ip("10.0.0.5"), &map(&[]), &trusted), ip("10.0.0.5"));
    }
}
