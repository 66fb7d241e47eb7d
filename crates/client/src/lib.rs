//! A typed client of the Saoma API: admin, merchant (signed with RFC 9421) and wallet
//! calls, and the POS engine that charges a scanned code without ever charging twice.
//! Used by the CLI and the tests.

pub mod events;
mod keys;
mod operator;
pub mod pos;
mod products;
pub mod queue;
mod review;

use saoma_api as api;
use saoma_api::signing;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How a client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    None,
    /// The operator's bearer token.
    Admin(String),
    /// A merchant or terminal key.
    Key {
        key_id: String,
        secret: String,
    },
    /// A customer's wallet session token.
    Session(String),
}

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error envelope.
    #[error("{status} {}: {}", .error.code, .error.message)]
    Api { status: u16, error: api::ErrorBody },
    /// No answer: the request may or may not have been processed.
    #[error("no answer from the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is not what the API promises.
    #[error("unexpected answer ({status}): {body}")]
    Unexpected { status: u16, body: String },
}

impl ClientError {
    /// The error code of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error, .. } => Some(error.code.as_str()),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => Some(*status),
            ClientError::Transport(_) => None,
        }
    }
}

/// Result of a call.
pub type ClientResult<T> = Result<T, ClientError>;

/// A client of one server with one set of credentials.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

/// Picks the TLS crypto provider (ring) for every `https://` call in this process. Called
/// by each constructor; later calls do nothing.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The error of a non-2xx answer: the API's envelope, or the body as it came.
pub(crate) fn error_of(status: u16, body: String) -> ClientError {
    match serde_json::from_str::<api::ErrorEnvelope>(&body) {
        Ok(env) => ClientError::Api { status, error: env.error },
        Err(_) => ClientError::Unexpected { status, body },
    }
}

fn nonce() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..24).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)])).collect()
}

impl Client {
    /// A client of `base` (`http://127.0.0.1:8080`) with a 40-second timeout per call.
    pub fn new(base: &str, credentials: Credentials) -> Client {
        Client::with_timeout(base, credentials, Duration::from_secs(40))
    }

    /// A client with its own per-call timeout (the POS uses a short one).
    pub fn with_timeout(base: &str, credentials: Credentials, timeout: Duration) -> Client {
        install_tls();
        let http =
            reqwest::Client::builder().timeout(timeout).build().unwrap_or_else(|_| reqwest::Client::new());
        Client { http, base: base.trim_end_matches('/').to_string(), credentials }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same credentials against another node (or another address of the same one).
    pub fn at(&self, base: &str) -> Client {
        Client {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_string(),
            credentials: self.credentials.clone(),
        }
    }

    /// The same connection pool with other credentials: many tills or wallets over one
    /// keep-alive connection, as a load generator drives them.
    pub fn with_credentials(&self, credentials: Credentials) -> Client {
        Client { http: self.http.clone(), base: self.base.clone(), credentials }
    }

    /// A request with the credentials applied (signed, for a key); `bytes` is the body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        bytes: Option<Vec<u8>>,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = self.http.request(m, &url);
        match &self.credentials {
            Credentials::None => {}
            Credentials::Admin(t) | Credentials::Session(t) => req = req.bearer_auth(t),
            Credentials::Key { key_id, secret } => {
                let created = chrono::Utc::now().timestamp();
                let h =
                    signing::sign_request(method, &url, bytes.as_deref(), key_id, secret, created, &nonce());
                req = req.header("signature-input", h.signature_input).header("signature", h.signature);
                if let Some(d) = h.content_digest {
                    req = req.header("content-digest", d);
                }
            }
        }
        if let Some(b) = bytes {
            req = req.header("content-type", "application/json").body(b);
        }
        req
    }

    /// Sends a request and decodes the answer. `body` is JSON-encoded once, and those bytes
    /// are what is signed and sent.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> ClientResult<T> {
        let bytes = match body {
            Some(b) => Some(
                serde_json::to_vec(b)
                    .map_err(|e| ClientError::Unexpected { status: 0, body: e.to_string() })?,
            ),
            None => None,
        };
        let resp = self.request(method, path, bytes).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|_| ClientError::Unexpected { status, body: text });
        }
        Err(error_of(status, text))
    }

    /// Sends a request whose success has no body (204).
    pub async fn call_no_content(&self, method: &str, path: &str) -> ClientResult<()> {
        let resp = self.request(method, path, None).send().await?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(error_of(status, resp.text().await?))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.call::<T>("GET", path, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> ClientResult<T> {
        self.call("POST", path, Some(body)).await
    }

    // ---- admin ----

    /// Creates a merchant (pending review).
    pub async fn create_merchant(&self, req: &api::CreateMerchantRequest) -> ClientResult<api::Merchant> {
        self.post("/v1/admin/merchants", req).await
    }

    /// Approves a merchant.
    pub async fn approve_merchant(&self, id: &str) -> ClientResult<api::Merchant> {
        self.post(&format!("/v1/admin/merchants/{id}/approve"), &serde_json::json!({})).await
    }

    /// Suspends a merchant.
    pub async fn suspend_merchant(&self, id: &str) -> ClientResult<api::Merchant> {
        self.post(&format!("/v1/admin/merchants/{id}/suspend"), &serde_json::json!({})).await
    }

    /// Adds a terminal.
    pub async fn create_terminal(&self, merchant_id: &str, name: &str) -> ClientResult<api::Terminal> {
        self.post(
            &format!("/v1/admin/merchants/{merchant_id}/terminals"),
            &api::CreateTerminalRequest { name: name.into() },
        )
        .await
    }

    /// Issues a key.
    pub async fn create_key(
        &self,
        merchant_id: &str,
        terminal_id: Option<&str>,
    ) -> ClientResult<api::KeyCreated> {
        let role = if terminal_id.is_some() { "terminal" } else { "merchant" };
        let req = api::CreateKeyRequest { terminal_id: terminal_id.map(str::to_string), role: role.into() };
        self.post(&format!("/v1/admin/merchants/{merchant_id}/keys"), &req).await
    }

    /// Adds a new receipt signing key (old ones stay published); returns its `kid`.
    pub async fn rotate_receipt_key(&self) -> ClientResult<api::ReceiptKeyAdded> {
        self.post("/v1/admin/receipt-keys/rotate", &serde_json::json!({})).await
    }

    /// The platform's receipt public keys (JWKS); no credentials needed.
    pub async fn jwks(&self) -> ClientResult<api::Jwks> {
        self.get("/.well-known/jwks.json").await
    }

    /// Sets the merchant's webhook endpoint; answers `{url, secret}` (a new secret).
    pub async fn set_webhook(&self, url: &str) -> ClientResult<api::WebhookEndpoint> {
        self.call("PUT", "/v1/merchant/webhook", Some(&api::EndpointRequest { url: url.into() })).await
    }

    /// The webhook delivery log, newest first (`status`: pending, delivered or dead).
    pub async fn webhook_deliveries(
        &self,
        status: Option<&str>,
    ) -> ClientResult<api::Page<api::WebhookDelivery>> {
        let q = api::DeliveriesQuery { status: status.map(str::to_string), ..Default::default() };
        self.get(&format!("/v1/merchant/webhook/deliveries{}", api::to_query(&q))).await
    }

    /// One delivery with its attempts.
    pub async fn webhook_delivery(&self, id: &str) -> ClientResult<api::WebhookDelivery> {
        self.get(&format!("/v1/merchant/webhook/deliveries/{id}")).await
    }

    /// Sends a delivery again (a new round of attempts).
    pub async fn resend_webhook(&self, id: &str) -> ClientResult<api::WebhookDelivery> {
        self.post(&format!("/v1/merchant/webhook/deliveries/{id}/resend"), &serde_json::json!({})).await
    }

    /// The CSV statement of a business day (merchant key).
    pub async fn bill(&self, date: &str) -> ClientResult<String> {
        let resp = self.request("GET", &format!("/v1/bills/{date}"), None).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        if status == 200 {
            return Ok(text);
        }
        Err(error_of(status, text))
    }

    /// Settles a business day for every merchant (operator).
    pub async fn settle(&self, date: &str) -> ClientResult<api::SettlementRun> {
        self.post("/v1/admin/settlements", &api::SettleRequest { date: date.into() }).await
    }

    /// Walks the audit log's hash chains (operator).
    pub async fn verify_audit(&self) -> ClientResult<api::AuditVerification> {
        self.get("/v1/admin/audit/verify").await
    }

    /// Signs a checkpoint of the audit chains' heads now; answers the newest, JWS included
    /// (operator).
    pub async fn audit_checkpoint(&self) -> ClientResult<api::CheckpointTaken> {
        self.post("/v1/admin/audit/checkpoints", &serde_json::json!({})).await
    }

    /// The review queue: merchants (of one `status`, if given) with their applications
    /// (any operator).
    pub async fn merchants_page(&self, status: Option<&str>) -> ClientResult<api::Page<api::MerchantListed>> {
        let q = api::MerchantsQuery { status: status.map(str::to_string), ..Default::default() };
        self.get(&format!("/v1/admin/merchants{}", api::to_query(&q))).await
    }

    /// Customers by phone, name or id, with their balances (any operator).
    pub async fn customers_page(&self, query: &str) -> ClientResult<api::Page<api::CustomerListed>> {
        let q = api::CustomersQuery { q: Some(query.to_string()), ..Default::default() };
        self.get(&format!("/v1/admin/customers{}", api::to_query(&q))).await
    }

    /// The newest `limit` audit records (auditor or admin).
    pub async fn audit_log(&self, limit: i64) -> ClientResult<api::AuditPage> {
        let q = api::AuditQuery { limit: Some(limit), ..Default::default() };
        self.get(&format!("/v1/admin/audit{}", api::to_query(&q))).await
    }

    /// The sales report of the last `days` business days (merchant or manager key).
    pub async fn sales_report(&self, days: i64) -> ClientResult<api::SalesReport> {
        let q = api::SalesReportQuery { days: Some(days) };
        self.get(&format!("/v1/merchant/reports/sales{}", api::to_query(&q))).await
    }

    /// Compares payments, ledger, statements and settlements of a day (operator).
    pub async fn reconcile(&self, date: &str) -> ClientResult<api::Reconciliation> {
        self.get(&format!("/v1/admin/reconciliation/{date}")).await
    }

    /// A payment's newest signed receipt.
    pub async fn receipt(&self, payment_id: &str) -> ClientResult<api::ReceiptResponse> {
        self.get(&format!("/v1/payments/{payment_id}/receipt")).await
    }

    /// Creates a customer.
    pub async fn create_customer(&self, phone: &str, name: &str, pin: &str) -> ClientResult<api::Customer> {
        let req = api::CreateCustomerRequest {
            phone: phone.into(),
            name: name.into(),
            pin: pin.into(),
            tier: None,
        };
        self.post("/v1/admin/customers", &req).await
    }

    /// Tops a wallet up.
    pub async fn top_up(
        &self,
        customer_id: &str,
        amount: i64,
        currency: &str,
        reference: &str,
    ) -> ClientResult<api::TopUp> {
        let req = api::TopUpRequest { amount, currency: currency.into(), reference: reference.into() };
        self.post(&format!("/v1/admin/customers/{customer_id}/topups"), &req).await
    }

    /// The trial balance.
    pub async fn trial_balance(&self) -> ClientResult<api::TrialBalance> {
        self.get("/v1/admin/ledger/trial-balance").await
    }

    // ---- merchant ----

    /// Creates a payment (with `payment_code`: charges the scanned code).
    pub async fn create_payment(&self, req: &api::CreatePaymentRequest) -> ClientResult<api::Payment> {
        self.post("/v1/payments", req).await
    }

    /// A payment, long-polling up to `wait_seconds` while it is pending.
    pub async fn payment(&self, id: &str, wait_seconds: u64) -> ClientResult<api::Payment> {
        let q = api::PaymentsQuery { wait: Some(wait_seconds), ..Default::default() };
        self.get(&format!("/v1/payments/{id}{}", api::to_query(&q))).await
    }

    /// A payment by the merchant's order number.
    pub async fn payment_by_trade_no(
        &self,
        out_trade_no: &str,
        wait_seconds: u64,
    ) -> ClientResult<api::Payment> {
        let q = api::PaymentsQuery {
            wait: Some(wait_seconds),
            out_trade_no: Some(out_trade_no.to_string()),
            ..Default::default()
        };
        self.get(&format!("/v1/payments{}", api::to_query(&q))).await
    }

    /// Cancels (reverses) a payment.
    pub async fn cancel(&self, id: &str) -> ClientResult<api::Payment> {
        self.post(&format!("/v1/payments/{id}/cancel"), &serde_json::json!({})).await
    }

    /// Cancels by order number, even one the server has not seen yet.
    pub async fn cancel_by_trade_no(&self, out_trade_no: &str) -> ClientResult<api::Payment> {
        self.post("/v1/payments/cancel", &api::CancelByTradeNoRequest { out_trade_no: out_trade_no.into() })
            .await
    }

    /// Refunds part or all of a payment.
    pub async fn refund(
        &self,
        payment_id: &str,
        out_refund_no: &str,
        amount: i64,
    ) -> ClientResult<api::Refund> {
        let req = api::CreateRefundRequest {
            out_refund_no: out_refund_no.into(),
            amount,
            reason: None,
            items: None,
        };
        self.refund_with(payment_id, &req).await
    }

    /// The merchant's static code.
    pub async fn merchant_qr(&self) -> ClientResult<api::MerchantQr> {
        self.get("/v1/merchant/qr").await
    }

    // ---- wallet ----

    /// Signs a customer in; the returned client carries the session.
    pub async fn wallet_session(&self, phone: &str, pin: &str) -> ClientResult<Client> {
        let s: api::Session = self
            .post("/v1/wallet/session", &api::SessionRequest { phone: phone.into(), pin: pin.into() })
            .await?;
        Ok(Client { credentials: Credentials::Session(s.token), ..self.clone() })
    }

    /// The wallet's balances.
    pub async fn wallet(&self) -> ClientResult<api::Wallet> {
        self.get("/v1/wallet").await
    }

    /// A fresh online payment code.
    pub async fn payment_code(&self) -> ClientResult<api::PaymentCodeIssued> {
        self.post("/v1/wallet/payment-codes", &serde_json::json!({})).await
    }

    /// Enrols this device for offline codes.
    pub async fn enroll_device(&self, pin: &str) -> ClientResult<api::DeviceEnrolled> {
        self.post("/v1/wallet/devices", &api::EnrollDeviceRequest { pin: Some(pin.to_string()) }).await
    }

    /// The customer's devices that still make offline codes (the first page).
    pub async fn devices(&self) -> ClientResult<api::Page<api::Device>> {
        self.get("/v1/wallet/devices").await
    }

    /// A page of the customer's devices, after `cursor`.
    pub async fn devices_page(
        &self,
        limit: i64,
        cursor: Option<&str>,
    ) -> ClientResult<api::Page<api::Device>> {
        let q = api::PageQuery { limit: Some(limit), cursor: cursor.map(str::to_string) };
        self.get(&format!("/v1/wallet/devices{}", api::to_query(&q))).await
    }

    /// Removes a device: its offline codes are refused from now on.
    pub async fn remove_device(&self, device_id: &str) -> ClientResult<()> {
        self.call_no_content("DELETE", &format!("/v1/wallet/devices/{device_id}")).await
    }

    /// Fetches an enrolled device's locators from now on (customer).
    pub async fn device_schedule(&self, device_id: &str) -> ClientResult<api::CodeSchedule> {
        self.post(&format!("/v1/wallet/devices/{device_id}/schedule"), &serde_json::json!({})).await
    }

    /// What a scanned string is (`POST /v1/qr/decode`), with a Saoma code's signature verdict.
    pub async fn decode_qr(&self, qr_payload: &str) -> ClientResult<api::QrDecoded> {
        self.post("/v1/qr/decode", &api::QrResolveRequest { qr_payload: qr_payload.into() }).await
    }

    /// What paying a scanned merchant code means, with its signature's verdict.
    pub async fn resolve_qr(&self, qr_payload: &str) -> ClientResult<api::QrResolution> {
        self.post("/v1/wallet/qr/resolve", &api::QrResolveRequest { qr_payload: qr_payload.into() }).await
    }

    /// Pays a scanned merchant code.
    pub async fn pay_qr(&self, req: &api::QrPayRequest) -> ClientResult<api::Payment> {
        self.post("/v1/wallet/qr/pay", req).await
    }

    /// Confirms a pending payment with the PIN.
    pub async fn confirm(&self, payment_id: &str, pin: &str) -> ClientResult<api::Payment> {
        self.post(
            &format!("/v1/wallet/payments/{payment_id}/confirm"),
            &api::ConfirmRequest { pin: pin.into() },
        )
        .await
    }

    /// Sends money to another customer.
    pub async fn transfer(&self, req: &api::TransferRequest) -> ClientResult<api::Transfer> {
        self.post("/v1/wallet/transfers", req).await
    }

    /// The customer's receive code, for a friend to scan.
    pub async fn receive_code(&self) -> ClientResult<api::ReceiveCode> {
        self.get("/v1/wallet/receive-code").await
    }

    /// The customer's history.
    pub async fn transactions(&self) -> ClientResult<api::Page<api::WalletTransaction>> {
        self.get("/v1/wallet/transactions").await
    }
}
