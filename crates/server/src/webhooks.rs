//! Webhooks per the Standard Webhooks specification: each outbox event of a merchant with
//! an endpoint becomes a delivery (queued in the event's own transaction), which a node
//! claims with a lease, signs (`standardwebhooks`), and sends until a 2xx — with back-off
//! for about a day, then it is dead-lettered, visible, and can be resent by hand.

use crate::AppState;
use crate::audit::Audit;
use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::secrets::Place;
use crate::util::{new_id, now, rfc3339};
use axum::Json;
use axum::extract::{Extension, Path, State};
use base64::Engine;
use futures::future::BoxFuture;
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_store::{AttemptOutcome, AuditRecord, DeliveryRow};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 28 h),
/// after the first attempt.
pub const STANDARD_RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long the old secret keeps signing after a rotation.
const SECRET_OVERLAP: chrono::Duration = chrono::Duration::hours(24);
/// How long a claimed delivery stays with the node that claimed it.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// `PUT /v1/merchant/webhook` `{url}` → `{url, secret}`: sets the endpoint and issues a new
/// secret; the previous one keeps signing for 24 hours beside it.
#[utoipa::path(
    operation_id = "webhooks_set_endpoint",
    put,
    path = "/v1/merchant/webhook",
    tag = "merchant",
    summary = "Sets the webhook endpoint.",
    request_body = saoma_api::EndpointRequest,
    responses((status = 200, description = "`{url, secret}`: the signing secret, shown this once", body = saoma_api::WebhookEndpoint)),
    security(("merchant_signature" = [])),
)]
pub async fn set_endpoint(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<saoma_api::EndpointRequest>,
) -> ApiResult<Json<saoma_api::WebhookEndpoint>> {
    caller.require_owner()?;
    check_url(&state, &req.url).await?;
    let mut raw = [0u8; 24];
    rand::Rng::fill(&mut rand::thread_rng(), &mut raw);
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(raw));
    let (t, now) = now();
    let previous_until = rfc3339(t + SECRET_OVERLAP);
    let mut tx = state.store.begin().await?;
    crate::auth::refuse_suspended(&mut tx, &caller.merchant_id).await?;
    let merchant = caller.merchant_id.as_str();
    let sealer = &state.keys.sealer;
    // The secret being replaced moves to its own column, sealed again for that place.
    let previous = match tx.webhook_secret(merchant).await? {
        Some(old) => Some(sealer.seal(
            Place::webhook_previous_secret(merchant),
            &sealer.open(Place::webhook_secret(merchant), &old)?,
        )),
        None => None,
    };
    let sealed = sealer.seal(Place::webhook_secret(merchant), &secret);
    tx.set_webhook_endpoint(merchant, &req.url, &sealed, previous.as_deref(), &previous_until, &now).await?;
    let audit = AuditRecord {
        actor: &caller.key_id,
        action: "webhook.set",
        object_id: &caller.merchant_id,
        detail: json!({"url": audited_url(&req.url)}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Ok(Json(saoma_api::WebhookEndpoint { url: req.url, secret }))
}

/// The URL as the audit log keeps it: without its query, which may carry a token.
fn audited_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.query().is_some() => {
            u.set_query(Some("redacted"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The delivery log's cursor: the time and id of the last delivery shown.
const DELIVERIES: page::Cursor = page::Cursor::of("webhook_deliveries");

/// `GET /v1/merchant/webhook/deliveries[?status=dead]`: the delivery log, newest first, a
/// page at a time.
#[utoipa::path(
    operation_id = "webhooks_list",
    get,
    path = "/v1/merchant/webhook/deliveries",
    tag = "merchant",
    summary = "The webhook delivery log.",
    params(api::DeliveriesQuery),
    responses((status = 200, description = "a page of deliveries, newest first", body = saoma_api::Page<saoma_api::WebhookDelivery>)),
    security(("merchant_signature" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<api::DeliveriesQuery>,
) -> ApiResult<Json<saoma_api::Page<saoma_api::WebhookDelivery>>> {
    caller.require_merchant_key()?;
    let limit = page::limit(q.limit, 50)?;
    if let Some(s) = &q.status
        && !["pending", "delivered", "dead"].contains(&s.as_str())
    {
        return Err(ApiError::invalid("status", "status is pending, delivered or dead"));
    }
    let before = DELIVERIES.read::<2>(q.cursor.as_deref())?;
    let before = before.as_ref().map(|[at, id]| (at.as_str(), id.as_str()));
    let rows = state.store.deliveries(&caller.merchant_id, q.status.as_deref(), before, limit + 1).await?;
    let (rows, next_cursor) = DELIVERIES.page(rows, limit, |d| vec![&d.created_at, &d.id])?;
    Ok(Json(saoma_api::Page { data: rows.iter().map(view).collect(), next_cursor }))
}

/// The most attempts one delivery shows: the newest. A round of retries is 8 attempts;
/// only many manual resends make more.
const ATTEMPTS_SHOWN: i64 = 100;

/// `GET /v1/merchant/webhook/deliveries/{id}`: one delivery with its attempts, oldest
/// first (the newest [`ATTEMPTS_SHOWN`]).
#[utoipa::path(
    operation_id = "webhooks_get",
    get,
    path = "/v1/merchant/webhook/deliveries/{id}",
    tag = "merchant",
    summary = "A webhook delivery.",
    params(("id" = String, Path, description = "the delivery's id")),
    responses((status = 200, description = "the delivery and its attempts", body = saoma_api::WebhookDelivery)),
    security(("merchant_signature" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Json<saoma_api::WebhookDelivery>> {
    caller.require_merchant_key()?;
    let d = state
        .store
        .delivery(&caller.merchant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = state
        .store
        .attempts(&d.id, ATTEMPTS_SHOWN)
        .await?
        .iter()
        .map(|a| saoma_api::DeliveryAttempt {
            attempted_at: a.attempted_at.clone(),
            node: a.node.clone(),
            status_code: a.status_code,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
        })
        .collect();
    Ok(Json(saoma_api::WebhookDelivery { attempts: Some(attempts), ..view(&d) }))
}

/// `POST /v1/merchant/webhook/deliveries/{id}/resend`: a new round of attempts, now.
#[utoipa::path(
    operation_id = "webhooks_resend",
    post,
    path = "/v1/merchant/webhook/deliveries/{id}/resend",
    tag = "merchant",
    summary = "Sends a delivery again.",
    params(("id" = String, Path, description = "the delivery's id")),
    responses((status = 200, description = "the delivery, queued again", body = saoma_api::WebhookDelivery)),
    security(("merchant_signature" = [])),
)]
pub async fn resend(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Json<saoma_api::WebhookDelivery>> {
    caller.require_merchant_key()?;
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    if !tx.resend_delivery(&id, &caller.merchant_id, &now).await? {
        return Err(ApiError::not_found("delivery"));
    }
    let audit =
        AuditRecord { actor: &caller.key_id, action: "webhook.resend", object_id: &id, detail: json!({}) };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    state.committed();
    let d = state
        .store
        .delivery(&caller.merchant_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Json(view(&d)))
}

fn view(d: &DeliveryRow) -> saoma_api::WebhookDelivery {
    saoma_api::WebhookDelivery {
        id: d.id.clone(),
        kind: d.kind.clone(),
        status: d.status.clone(),
        attempt_count: d.attempts,
        next_attempt_at: (d.status == "pending").then(|| d.next_attempt_at.clone()),
        last_status_code: d.last_status_code,
        last_error: d.last_error.clone(),
        created_at: d.created_at.clone(),
        delivered_at: d.delivered_at.clone(),
        attempts: None,
    }
}

/// Finds the addresses of a webhook host: the system's resolver, unless the operator (or a
/// test playing a rebinding DNS server) sets another in `Config::webhook_lookup`.
pub trait HostLookup: Send + Sync {
    /// The addresses `host` resolves to, with `port`.
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver.
struct SystemLookup;

impl HostLookup for SystemLookup {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A webhook target as vetted: where an attempt connects, and only there.
struct Target {
    url: reqwest::Url,
    /// The host name, when the URL names one (not an IP address).
    domain: Option<String>,
    /// What the host resolved to when it was vetted.
    addrs: Vec<SocketAddr>,
}

/// Checks a URL's form: http(s), https unless private targets are allowed, a host, not
/// too long.
fn parse_url(url: &str, allow_private: bool) -> ApiResult<reqwest::Url> {
    let bad = |m: &str| ApiError::invalid("url", m).with_code(ErrorCode::WebhookUrlNotAllowed);
    let parsed = reqwest::Url::parse(url).map_err(|e| ApiError::invalid("url", format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(bad("webhook URLs must be https")),
    }
    if url.len() > 2048 {
        return Err(ApiError::invalid("url", "url is at most 2048 characters"));
    }
    if parsed.host().is_none() {
        return Err(bad("the URL has no host"));
    }
    // Credentials in a URL would be stored, shown and audited in the clear: the endpoint
    // authenticates Saoma by the webhook signature instead.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("a webhook URL may not carry a user name or password"));
    }
    Ok(parsed)
}

/// Resolves a URL's host once and vets every address: each must be public unless
/// private targets are allowed. The answer is the only place an attempt may connect to,
/// so a name that resolves elsewhere a moment later (DNS rebinding) changes nothing.
///
/// A name that does not resolve and one that resolves inside the network get the same
/// answer, so the endpoint setting cannot be used to map internal names (a DNS oracle).
async fn vet(url: &str, allow_private: bool, lookup: &dyn HostLookup) -> ApiResult<Target> {
    let unreachable = || {
        ApiError::invalid("url", "the URL's host does not resolve to a public address")
            .with_code(ErrorCode::WebhookUrlNotAllowed)
    };
    let url = parse_url(url, allow_private)?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = url.host_str().ok_or_else(unreachable)?.to_string();
    let (domain, addrs) = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => (None, vec![SocketAddr::new(ip, port)]),
        Err(_) => (Some(host.clone()), lookup.lookup(&host, port).await.map_err(|_| unreachable())?),
    };
    if addrs.is_empty() || (!allow_private && addrs.iter().any(|a| !saoma_core::address::is_public(a.ip()))) {
        return Err(unreachable());
    }
    Ok(Target { url, domain, addrs })
}

/// Refuses, when the endpoint is set, a URL that is not http(s), not https in
/// production, or whose host resolves to an address that is not public (unless private
/// targets are allowed). Every attempt vets it again and connects only where it vetted.
async fn check_url(state: &AppState, url: &str) -> ApiResult<()> {
    let allow_private = state.config.webhook_allow_private;
    if allow_private {
        // Development targets need not resolve yet; each attempt still pins its address.
        return parse_url(url, allow_private).map(|_| ());
    }
    vet(url, allow_private, lookup_of(state)).await.map(|_| ())
}

/// The resolver webhooks use.
fn lookup_of(state: &AppState) -> &dyn HostLookup {
    match &state.config.webhook_lookup {
        Some(l) => l.as_ref(),
        None => &SystemLookup,
    }
}

/// Refuses every name: a pinned client resolves its one vetted host from its override,
/// and nothing else.
struct NoLookup;

impl reqwest::dns::Resolve for NoLookup {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let refused: Box<dyn std::error::Error + Send + Sync> =
            format!("{} was not vetted for this delivery", name.as_str()).into();
        Box::pin(std::future::ready(Err(refused)))
    }
}

/// A client for one attempt that connects to the vetted addresses only: no second DNS
/// answer, no proxy, no redirect.
fn pinned_client(target: &Target) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        // A redirect could lead anywhere, private addresses included: a 3xx is a failure.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself.
        .no_proxy()
        .dns_resolver(NoLookup);
    if let Some(domain) = &target.domain {
        builder = builder.resolve_to_addrs(domain, &target.addrs);
    }
    builder.build().map_err(|e| format!("no HTTP client: {e}"))
}

/// How many deliveries one round of the loop claims and sends at once.
const DELIVERY_BATCH: i64 = 16;

/// The pause between two rounds while a backlog drains: at most ten full batches a
/// second per node, so endpoints that fail at once cannot turn the loop into a busy one
/// competing with payments for the database.
const BACKLOG_PAUSE: Duration = Duration::from_millis(100);

/// The least time between two rounds woken by commits. Every commit of this node wakes
/// the loop; under load, claiming at each wake-up made the loop a busy one, a claim
/// transaction for every payment. A burst of commits now waits this long at most.
const COMMIT_ROUND_GAP: Duration = Duration::from_millis(50);

/// Starts this node's delivery loop: it wakes on local commits and every second, and
/// goes on after [`BACKLOG_PAUSE`] while a round finds a full batch due, so a backlog
/// drains at up to 160 deliveries a second rather than 16.
pub fn spawn_worker(state: AppState) {
    let node = new_id("node_");
    tokio::spawn(async move {
        let mut backlog = false;
        let mut pace = crate::util::Pace::new(COMMIT_ROUND_GAP);
        loop {
            // While a backlog drains, a commit's wake-up cannot shorten the pause.
            tokio::select! {
                _ = tokio::time::sleep(if backlog { BACKLOG_PAUSE } else { Duration::from_secs(1) }) => {}
                _ = state.changed.notified(), if !backlog => {}
                _ = state.stopping() => return,
            }
            tokio::select! {
                _ = pace.wait() => {}
                _ = state.stopping() => return,
            }
            let (t, now) = now();
            let due = match state.store.claim_deliveries(&now, &rfc3339(t + LEASE), DELIVERY_BATCH).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "Could not claim webhook deliveries.");
                    backlog = false;
                    continue;
                }
            };
            backlog = due.len() as i64 >= DELIVERY_BATCH;
            let sends = due.into_iter().map(|d| deliver(&state, &node, d));
            futures::future::join_all(sends).await;
        }
    });
}

async fn deliver(state: &AppState, node: &str, d: DeliveryRow) {
    let started = Instant::now();
    let (t, attempted_at) = now();
    let (status_code, error) = match send(state, &d).await {
        Ok(code) if (200..300).contains(&code) => (Some(code), None),
        Ok(code) => (Some(code), Some(format!("answered {code}"))),
        Err(e) => (None, Some(e)),
    };
    let delays = &state.config.webhook_retry_delays;
    let (status, next) = match (&error, delays.get(d.attempts as usize)) {
        (None, _) => ("delivered", attempted_at.clone()),
        (Some(_), Some(wait)) => {
            ("pending", rfc3339(t + chrono::Duration::from_std(*wait).unwrap_or_default()))
        }
        (Some(_), None) => ("dead", attempted_at.clone()),
    };
    if status == "dead" {
        tracing::warn!(delivery = %d.id, merchant = %d.merchant_id, "Webhook dead-lettered after its last attempt.");
    }
    metrics::counter!("saoma_webhook_attempts_total", "result" => status).increment(1);
    let outcome = AttemptOutcome {
        node,
        attempted_at: &attempted_at,
        status_code: status_code.map(i64::from),
        error,
        duration_ms: started.elapsed().as_millis() as i64,
        status,
        next_attempt_at: &next,
    };
    if let Err(e) = state.store.finish_attempt(&d.id, &outcome).await {
        tracing::warn!(error = %e, delivery = %d.id, "Could not record a webhook attempt; it will be retried.");
    }
}

/// Signs and sends one attempt; the HTTP status, or why there was none.
async fn send(state: &AppState, d: &DeliveryRow) -> Result<u16, String> {
    let endpoint = state
        .store
        .webhook_endpoint(&d.merchant_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the merchant has no webhook endpoint")?;
    // Vetted again at every attempt (a name may resolve elsewhere since it was set), and
    // the attempt connects to what was vetted, nowhere else.
    let target = vet(&endpoint.url, state.config.webhook_allow_private, lookup_of(state))
        .await
        .map_err(|e| e.message)?;
    let http = pinned_client(&target)?;
    let timestamp = chrono::Utc::now().timestamp();
    let open = |at: Place<'_>, s: &str| state.keys.sealer.open(at, s).map_err(|e| e.to_string());
    let mut secrets = vec![open(Place::webhook_secret(&d.merchant_id), &endpoint.secret)?];
    let (_, now) = now();
    if let (Some(old), Some(until)) = (&endpoint.previous_secret, &endpoint.previous_until)
        && until.as_str() > now.as_str()
    {
        secrets.push(open(Place::webhook_previous_secret(&d.merchant_id), old)?);
    }
    let mut signatures = Vec::new();
    for secret in &secrets {
        let wh = standardwebhooks::Webhook::new(secret).map_err(|e| format!("bad secret: {e:?}"))?;
        signatures
            .push(wh.sign(&d.id, timestamp, d.body.as_bytes()).map_err(|e| format!("cannot sign: {e:?}"))?);
    }
    let response = http
        .post(target.url)
        .header("content-type", "application/json")
        .header(standardwebhooks::HEADER_WEBHOOK_ID, &d.id)
        .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
        .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signatures.join(" "))
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| format!("not delivered: {}", e.without_url()))?;
    Ok(response.status().as_u16())
}
