//! The Saoma payment server: axum routes over the store, authentication, live feed.
//!
//! A handler extracts, calls one service function, and maps the result. A service owns
//! one database transaction: load, ask `saoma-core` to decide, save, commit. This crate
//! is a library; the `saoma` binary starts it, and the tests start it on port 0.

mod admin;
mod audit;
mod auth;
mod bills;
mod charge;
mod codes;
mod config;
mod desk;
mod edge;
mod error;
mod events;
mod guesses;
mod json;
mod keys;
mod limits;
mod merchant;
mod openapi;
mod operators;
mod page;
mod pages;
mod payments;
mod pin;
mod products;
mod qr;
mod receipts;
mod review;
mod risk;
mod risk_desk;
mod secrets;
mod settlement;
mod stock;
mod util;
mod views;
mod wallet;
mod wallet_pay;
mod web;
mod webhooks;
mod work;

pub use config::{Config, TERMINAL_REVERSAL_WINDOW_DEFAULT, TERMINAL_REVERSAL_WINDOW_MAX};
pub use error::{ApiError, ApiResult};
pub use guesses::RECIPIENT_LOOKUPS_PER_HOUR;
pub use limits::{PER_IP_DEFAULT as RATE_LIMIT_PER_IP, PER_KEY_DEFAULT as RATE_LIMIT_PER_KEY};
pub use openapi::json as openapi_json;
pub use secrets::rotate_master_key;
pub use webhooks::HostLookup;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use saoma_api::ErrorCode;
use saoma_store::Store;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Secrets of the platform that live in the database's settings.
pub struct PlatformKeys {
    /// Seals secrets at rest under the master key.
    pub sealer: secrets::Sealer,
    /// Keys the per-merchant customer handle (`customer_ref`).
    pub customer_ref_key: Vec<u8>,
    /// Enciphers device slots into the locators of offline payment codes; never leaves
    /// the server.
    pub slot_cipher: saoma_core::paycode::SlotCipher,
    /// Derives the CSRF token of a browser session from its token's hash.
    pub csrf_key: Vec<u8>,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub keys: Arc<PlatformKeys>,
    /// Woken after each commit on any node, so long-polls and live feeds look again at once.
    pub changed: Arc<Notify>,
    /// Holds a permit when a local commit has not yet been announced to the other nodes.
    to_announce: Arc<Notify>,
    /// Turns true when the server begins to shut down; live feeds end on it.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Rate limits of this node.
    pub limits: Arc<limits::RateLimits>,
    /// Signs merchant QR codes: the newest receipt key's seed.
    qr_seed: Arc<std::sync::RwLock<[u8; 32]>>,
    /// The risk rules as last read.
    pub risk_rules: Arc<risk::RulesCache>,
    /// The receipt key this node signs with, as last read.
    pub signing_key: Arc<receipts::SigningKeyCache>,
    /// The published receipt keys as last read, to check merchant codes' signatures.
    pub key_set: Arc<receipts::KeySetCache>,
    /// How many announcements from other nodes this node has heard.
    remote_commits: Arc<std::sync::atomic::AtomicU64>,
    metrics: PrometheusHandle,
    /// Bounds the Argon2 work of PIN checks on this node.
    pub pin_workers: Arc<tokio::sync::Semaphore>,
    /// The bad-code counters known to exist (see `codes::ensure_counters`).
    pub guess_scopes: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Only the first server in a process installs the recorder; later ones share it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl AppState {
    /// Opens the store and loads (or creates) the platform's keys.
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        let master = config
            .master_key
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no master key: set SAOMA_MASTER_KEY (64 hex characters)"))?;
        if config.terminal_reversal_window > TERMINAL_REVERSAL_WINDOW_MAX {
            anyhow::bail!(
                "the terminal reversal window is at most {} seconds",
                TERMINAL_REVERSAL_WINDOW_MAX.as_secs()
            );
        }
        let sealer = secrets::Sealer::from_hex(master)?;
        let store = Store::open(&config.database_url).await?;
        secrets::unlock(&store, &sealer).await?;
        let customer_ref_key = secrets::platform_key(&store, &sealer, "customer_ref_key").await?;
        let slot_cipher = saoma_core::paycode::SlotCipher::new(
            &secrets::platform_key(&store, &sealer, "code_locator_key").await?,
        )?;
        let csrf_key = secrets::platform_key(&store, &sealer, "csrf_key").await?;
        receipts::ensure_key(&store, &sealer).await?;
        let qr_seed = receipts::newest_seed(&store, &sealer).await?;
        let limits = Arc::new(limits::RateLimits::new(config.rate_limit_per_ip, config.rate_limit_per_key));
        let config_pin_checks = config.pin_checks_in_flight.max(1);
        Ok(AppState {
            limits,
            store,
            config: Arc::new(config),
            keys: Arc::new(PlatformKeys { sealer, customer_ref_key, slot_cipher, csrf_key }),
            changed: Arc::new(Notify::new()),
            to_announce: Arc::new(Notify::new()),
            stopping: tokio::sync::watch::Sender::new(false),
            remote_commits: Arc::default(),
            risk_rules: Arc::default(),
            signing_key: Arc::default(),
            key_set: Arc::default(),
            qr_seed: Arc::new(std::sync::RwLock::new(qr_seed)),
            metrics: metrics_handle(),
            pin_workers: Arc::new(tokio::sync::Semaphore::new(config_pin_checks)),
            guess_scopes: Arc::default(),
        })
    }

    /// Called after every commit: wakes this node's waiters and, soon, the other nodes'.
    pub fn committed(&self) {
        self.changed.notify_waiters();
        self.to_announce.notify_one();
    }

    /// The seed that signs merchant QR codes.
    pub fn qr_seed(&self) -> [u8; 32] {
        // A poisoned lock still holds the seed last written (a copy of an array cannot be
        // left half-done): never an all-zero key.
        *self.qr_seed.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_qr_seed(&self, seed: [u8; 32]) {
        *self.qr_seed.write().unwrap_or_else(std::sync::PoisonError::into_inner) = seed;
    }

    /// How many commit announcements (PostgreSQL NOTIFY) this node has heard.
    pub fn remote_commits_heard(&self) -> u64 {
        self.remote_commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves once the server has begun to shut down.
    pub async fn stopping(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

/// Carries commits between nodes: announces this node's (coalesced: one `NOTIFY` for
/// however many commits happened while the last one was sent) and wakes local waiters on
/// the others'. Does nothing on SQLite.
fn spawn_cross_node(state: AppState) {
    /// The least time between two announcements: under load one NOTIFY carries every
    /// commit of its 10 ms, instead of one NOTIFY per commit, each waking every node.
    const ANNOUNCE_GAP: std::time::Duration = std::time::Duration::from_millis(10);
    let announcer = state.clone();
    tokio::spawn(async move {
        if announcer.store.backend() != saoma_store::Backend::Postgres {
            return;
        }
        let mut pace = util::Pace::new(ANNOUNCE_GAP);
        loop {
            tokio::select! {
                _ = announcer.to_announce.notified() => {}
                _ = announcer.stopping() => return,
            }
            tokio::select! {
                _ = pace.wait() => {}
                _ = announcer.stopping() => return,
            }
            if let Err(e) = announcer.store.announce_change().await {
                tracing::warn!(error = %e, "Could not announce a commit to the other nodes.");
            }
        }
    });
    tokio::spawn(async move {
        let mut listener = match state.store.change_listener().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "No LISTEN connection: other nodes' commits are seen by polling.");
                return;
            }
        };
        loop {
            tokio::select! {
                r = listener.next() => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "LISTEN connection failed; retrying.");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    } else {
                        state.remote_commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        metrics::counter!("saoma_remote_commits_heard_total").increment(1);
                    }
                    state.changed.notify_waiters();
                }
                _ = state.stopping() => return,
            }
        }
    });
}

/// With group commit, an answer read from a batch without committing to it leaves only
/// once that batch has committed (`saoma_store::settled`); if it did not, the answer may
/// name what is gone, and the client is told to retry instead.
async fn settled(req: Request, next: Next) -> Response {
    let (response, settled) = saoma_store::settled(next.run(req)).await;
    match settled {
        Ok(()) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Gives every request an id, answers it in `Request-Id`, and renders API errors with it.
async fn request_id(req: Request, next: Next) -> Response {
    let id = util::new_id("req_");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = next.run(req).await;
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        response = error::render(&err, &id);
    } else if response.status().is_client_error() && response.headers().get("content-type").is_none() {
        // Rejections from axum itself (405, 413 from the body limit) get the envelope too.
        let code = match response.status() {
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
            _ => ErrorCode::InvalidRequest,
        };
        let err = ApiError::new(code, "request refused");
        response = error::render(&err, &id);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", v);
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("saoma_http_requests_total", "method" => method.to_string(), "status" => status)
        .increment(1);
    tracing::debug!(request_id = %id, %method, %path, status = response.status().as_u16(), "Request served.");
    response
}

#[utoipa::path(
    operation_id = "healthz",
    get,
    path = "/healthz",
    tag = "public",
    summary = "Health.",
    responses((status = 200, description = "ready to take payments", body = String, content_type = "text/plain")),
)]
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.last_event_cursor().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => ApiError::new(ErrorCode::Unavailable, format!("database: {e}")).into_response(),
    }
}

#[utoipa::path(
    operation_id = "metrics_text",
    get,
    path = "/metrics",
    tag = "admin",
    summary = "Metrics.",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")),
    security(("operator_token" = [])),
)]
async fn metrics_text(State(state): State<AppState>) -> Response {
    // The store counts its commits; a batch of the group commit counts once.
    metrics::counter!("saoma_store_flushes_total").absolute(state.store.flushes());
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    // Operator routes by who may call them; admin_auth (outermost) names the operator.
    let allow = |roles: &'static [&'static str]| {
        middleware::from_fn(move |req: Request, next: Next| auth::require_role(roles, req, next))
    };
    let admin_only = Router::new()
        .route("/v1/admin/merchants", post(admin::create_merchant))
        .route("/v1/admin/merchants/{id}/approve", post(review::approve))
        .route("/v1/admin/merchants/{id}/reject", post(review::reject))
        .route("/v1/admin/merchants/{id}/request-info", post(review::request_info))
        .route("/v1/admin/merchants/{id}/terminals", post(admin::create_terminal))
        .route("/v1/admin/merchants/{id}/keys", post(keys::admin_create).get(keys::admin_list))
        .route("/v1/admin/keys/{id}/revoke", post(keys::admin_revoke))
        .route("/v1/admin/keys/{id}/rotate", post(keys::admin_rotate))
        .route("/v1/admin/operators", post(operators::create).get(operators::list))
        .route("/v1/admin/operators/{id}/revoke", post(operators::revoke))
        .route("/v1/admin/customers", post(admin::create_customer))
        .route("/v1/admin/customers/{id}/topups", post(admin::top_up))
        .route("/v1/admin/receipt-keys/rotate", post(receipts::rotate))
        .route("/v1/admin/settlements", post(settlement::settle))
        .route_layer(allow(auth::ADMIN_ONLY));
    let risk_desk = Router::new()
        .route("/v1/admin/merchants/{id}/suspend", post(review::suspend))
        .route("/v1/admin/merchants/{id}/reinstate", post(review::reinstate))
        .route("/v1/admin/customers/{id}/freeze", post(risk_desk::freeze))
        .route("/v1/admin/customers/{id}/unfreeze", post(risk_desk::unfreeze))
        .route("/v1/admin/customers/{id}/sessions/revoke", post(risk_desk::revoke_sessions))
        .route("/v1/admin/customers/{id}/tier", put(risk_desk::set_tier))
        .route("/v1/admin/risk/rules", put(risk_desk::put_rules))
        .route_layer(allow(auth::RISK));
    let audit_desk = Router::new()
        .route("/v1/admin/ledger/trial-balance", get(admin::trial_balance))
        .route("/v1/admin/audit/verify", get(audit::verify))
        .route("/v1/admin/audit/checkpoints", post(audit::take_checkpoint))
        .route("/v1/admin/audit", get(desk::audit))
        .route("/v1/admin/reconciliation/{date}", get(settlement::reconcile))
        .route_layer(allow(auth::AUDIT));
    let read_only = Router::new()
        .route("/v1/admin/merchants", get(desk::merchants))
        .route("/v1/admin/customers", get(desk::customers))
        .route("/v1/admin/merchants/{id}", get(admin::get_merchant))
        .route("/v1/admin/merchants/{id}/application", get(review::get))
        .route("/v1/admin/customers/{id}", get(risk_desk::get_customer))
        .route("/v1/admin/risk/rules", get(risk_desk::get_rules))
        .route("/v1/admin/risk/decisions", get(risk_desk::decisions))
        .route("/v1/admin/settlements/{date}", get(settlement::report))
        // On the API's address the metrics are an operator's; see `metrics_router`.
        .route("/metrics", get(metrics_text))
        .route_layer(allow(auth::ANY_OPERATOR));
    let admin = admin_only
        .merge(risk_desk)
        .merge(audit_desk)
        .merge(read_only)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::admin_auth));
    let merchant = Router::new()
        .route("/v1/payments", post(payments::create).get(payments::find))
        .route("/v1/payments/cancel", post(payments::cancel_by_trade_no))
        .route("/v1/payments/{id}", get(payments::get))
        .route("/v1/payments/{id}/cancel", post(payments::cancel))
        .route("/v1/payments/{id}/refunds", post(payments::refund))
        .route("/v1/payments/{id}/receipt", get(receipts::get))
        .route("/v1/merchant/qr", get(merchant::static_qr))
        .route("/v1/events/stream", get(events::stream))
        .route("/v1/bills/{date}", get(bills::get))
        .route("/v1/merchant/webhook", put(webhooks::set_endpoint))
        .route("/v1/merchant/keys", post(keys::own_create).get(keys::own_list))
        .route("/v1/merchant/application", put(review::apply).get(review::own))
        .route("/v1/merchant/keys/{id}/revoke", post(keys::own_revoke))
        .route("/v1/merchant/keys/{id}/rotate", post(keys::own_rotate))
        .route("/v1/merchant/webhook/deliveries", get(webhooks::list))
        .route("/v1/merchant/webhook/deliveries/{id}", get(webhooks::get))
        .route("/v1/merchant/webhook/deliveries/{id}/resend", post(webhooks::resend))
        .route("/v1/merchant/terminals", get(desk::terminals))
        .route("/v1/merchant/settlements", get(desk::settlements))
        .route("/v1/merchant/reports/sales", get(desk::sales_report))
        .route("/v1/merchant/products", post(products::create).get(products::list))
        .route("/v1/merchant/products/{id}", get(products::get).patch(products::update))
        .route("/v1/merchant/products/{id}/adjustments", post(products::adjust))
        .route("/v1/merchant/products/{id}/movements", get(products::movements))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::merchant_auth));
    let wallet_open = Router::new().route("/v1/wallet/session", post(wallet::create_session));
    let wallet = Router::new()
        .route("/v1/wallet", get(wallet::get_wallet))
        .route("/v1/wallet/session", axum::routing::delete(wallet::end_session))
        .route("/v1/wallet/payment-codes", post(wallet::issue_code))
        .route("/v1/wallet/devices", post(wallet::enroll_device).get(wallet::list_devices))
        .route("/v1/wallet/devices/{id}", axum::routing::delete(wallet::remove_device))
        .route("/v1/wallet/devices/{id}/schedule", post(wallet::device_schedule))
        .route("/v1/wallet/qr/resolve", post(wallet_pay::resolve_qr))
        .route("/v1/wallet/qr/pay", post(wallet_pay::pay_qr))
        .route("/v1/wallet/payments/{id}/confirm", post(wallet_pay::confirm))
        .route("/v1/wallet/transfers", post(wallet_pay::transfer))
        .route("/v1/wallet/receive-code", get(wallet::receive_code))
        .route("/v1/wallet/transactions", get(wallet::transactions))
        .route("/v1/wallet/pending", get(desk::pending))
        .route("/v1/wallet/recipients/resolve", post(desk::recipient))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::wallet_auth));
    // The screens and their browser sessions (each sign-in checks its own credentials).
    let screens = Router::new()
        .route("/", get(pages::index))
        .route("/pos", get(pages::pos))
        .route("/wallet", get(pages::wallet))
        .route("/merchant", get(pages::merchant))
        .route("/console", get(pages::console))
        .route("/assets/{*path}", get(pages::asset))
        .route("/favicon.ico", get(pages::favicon))
        .route("/v1/web/merchant/session", post(web::merchant_sign_in))
        .route("/v1/web/merchant/manager", post(web::manager_override).delete(web::manager_release))
        .route("/v1/web/wallet/session", post(web::wallet_sign_in))
        .route("/v1/web/operator/session", post(web::operator_sign_in))
        .route("/v1/web/sign-out", post(web::sign_out));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jwks.json", get(receipts::jwks))
        .route("/openapi.json", get(openapi::serve_json))
        .route("/docs", get(openapi::docs_root))
        .route("/docs/", get(openapi::docs_index))
        .route("/docs/{*file}", get(openapi::docs_asset))
        .route("/v1/qr.png", get(qr::png))
        .route("/v1/qr.svg", get(qr::svg))
        .route("/v1/barcode.svg", get(qr::barcode_svg))
        .route("/v1/qr/decode", put(qr::decode).post(qr::decode))
        .merge(admin)
        .merge(merchant)
        .merge(wallet_open)
        .merge(wallet)
        .merge(screens)
        .fallback(not_found)
        .layer(middleware::from_fn(settled))
        .layer(DefaultBodyLimit::max(auth::BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), edge::guard))
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(state.clone(), edge::headers))
        .with_state(state)
}

/// `/metrics` alone, for the separate metrics address (`--metrics-listen`): whoever can
/// reach that address (the operator's private network) reads them without a token.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(state.clone(), edge::headers))
        .with_state(state)
}

/// A running server.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served without a token, when `metrics_listen` asked for it.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops taking connections, ends live feeds, finishes requests in flight, and closes
    /// the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.state.stopping.send_replace(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await??;
        self.state.store.close().await;
        Ok(())
    }
}

/// Picks ring as the TLS crypto provider for outgoing https (webhooks); idempotent.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts the server on a bound listener, in the background.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<RunningServer> {
    let state = AppState::new(config).await?;
    // The heads as this node finds them are anchored before it writes anything.
    audit::checkpoint(&state.store, &state.keys.sealer).await?;
    let addr = listener.local_addr()?;
    let metrics_addr = match state.config.metrics_listen {
        Some(at) => {
            let metrics_listener = TcpListener::bind(at).await?;
            let metrics_addr = metrics_listener.local_addr()?;
            let app = metrics_router(state.clone());
            let stopping = state.clone();
            tokio::spawn(async move {
                let served = axum::serve(metrics_listener, app)
                    .with_graceful_shutdown(async move { stopping.stopping().await })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "The metrics address stopped serving.");
                }
            });
            Some(metrics_addr)
        }
        None => None,
    };
    let app = router(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    install_tls_provider();
    spawn_cross_node(state.clone());
    webhooks::spawn_worker(state.clone());
    if state.config.settle_daily {
        settlement::spawn_daily(state.clone());
    }
    payments::spawn_expiry_sweep(state.clone(), state.config.expiry_sweep_every);
    let housekeeping = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = housekeeping.stopping() => return,
            }
            // Nonces older than twice the signature window can no longer be replayed.
            let cutoff = chrono::Utc::now().timestamp() - 2 * saoma_api::signing::CREATED_SKEW_SECONDS;
            if let Err(e) = housekeeping.store.forget_nonces_before(cutoff).await {
                tracing::warn!(error = %e, "Could not forget old nonces.");
            }
            housekeeping.limits.forget_idle();
            if let Err(e) = audit::checkpoint(&housekeeping.store, &housekeeping.keys.sealer).await {
                tracing::error!(error = %e, "Could not sign an audit checkpoint.");
            }
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningServer { addr, metrics_addr, state, shutdown: Some(tx), task })
}
