//! Resolving a scanned payment code to the customer it pays for, or to the decline code
//! that says why not. Codes are looked up by hash; a full code is never logged or stored.

use crate::AppState;
use crate::error::ApiResult;
use crate::util::sha256_hex;
use saoma_core::paycode::{self, PaymentCode};

/// A code that names a customer; `code_hash` marks it used.
pub struct ResolvedCode {
    pub customer_id: String,
    pub code_hash: String,
    /// Whether it was already used, when the look-up told (an online code's does, in the
    /// same query); `None`: ask `Store::code_used`.
    pub used: Option<bool>,
}

/// The hash a code is stored and marked used under.
pub fn code_hash(code: &str) -> String {
    sha256_hex(format!("saoma-payment-code:{code}").as_bytes())
}

/// Whether `code` is an offline code (one its device's revocation can stop).
pub fn is_offline(code: &str) -> bool {
    matches!(paycode::parse(code.trim()), Ok(PaymentCode::Offline { .. }))
}

/// Resolves a code at `now_unix`: `Ok(Err(failure_code))` for a decline.
pub async fn resolve(
    state: &AppState,
    code: &str,
    now: &str,
    now_unix: i64,
) -> ApiResult<Result<ResolvedCode, &'static str>> {
    let code = code.trim();
    let Ok(parsed) = paycode::parse(code) else { return Ok(Err("invalid_payment_code")) };
    let hash = code_hash(code);
    match parsed {
        PaymentCode::Online(_) => match state.store.online_code(&hash).await? {
            None => Ok(Err("invalid_payment_code")),
            Some((_, expires_at, _)) if expires_at.as_str() <= now => Ok(Err("payment_code_expired")),
            Some((customer_id, _, used)) => {
                Ok(Ok(ResolvedCode { customer_id, code_hash: hash, used: Some(used) }))
            }
        },
        PaymentCode::Offline { locator, otp } => {
            // One indexed look-up per step: the locator deciphers to the slot of that step.
            let check = |step: i64| async move {
                let slot =
                    state.keys.slot_cipher.slot_of(locator, step).map_err(crate::ApiError::internal)?;
                let device = state.store.device_by_slot(i64::from(slot)).await?;
                let Some(device) = device else { return Ok::<_, crate::ApiError>(None) };
                let secret =
                    state.keys.sealer.open(crate::secrets::Place::device(&device.id), &device.secret)?;
                let secret = hex::decode(secret).map_err(crate::ApiError::internal)?;
                Ok((paycode::otp(&secret, slot, step) == otp).then_some(device))
            };
            for step in paycode::accepted_steps(now_unix) {
                if let Some(device) = check(step).await? {
                    return Ok(Ok(ResolvedCode {
                        customer_id: device.customer_id,
                        code_hash: hash,
                        used: None,
                    }));
                }
            }
            for step in paycode::expired_steps(now_unix) {
                if check(step).await?.is_some() {
                    return Ok(Err("payment_code_expired"));
                }
            }
            Ok(Err("invalid_payment_code"))
        }
    }
}
