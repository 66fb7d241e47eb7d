//! Rows to wire types. What the API shows of a payment is decided here, once.

use crate::util::percent_encode;
use saoma_api as api;
use saoma_core::Currency;
use saoma_core::emv::SaomaMerchantCode;
use saoma_core::payment::{Payment, PaymentStatus};
use saoma_store::{EventRow, MerchantRow, RefundRow, StoreError, TransferRow};

/// The EMV payload of a merchant's code, signed with `seed` (tags 80 and 81): static
/// without a payment, dynamic with one.
pub fn merchant_code(
    m: &MerchantRow,
    payment: Option<&Payment>,
    seed: &[u8; 32],
) -> Result<String, StoreError> {
    let currency = merchant_currency(m)?;
    let code = SaomaMerchantCode {
        merchant_id: m.id.clone(),
        merchant_name: m.name.clone(),
        mcc: m.mcc.clone(),
        country: m.country.clone(),
        city: m.city.clone(),
        currency,
        amount: payment.map(|p| p.amount),
        reference: payment.and_then(|p| p.qr_ref.clone()),
    };
    // Every field was checked when the merchant was made: one that no longer encodes is corrupt.
    code.encode_signed(|input| saoma_api::qr_signature::sign(input, seed))
        .map_err(|e| StoreError::Corrupt(format!("merchant {}'s code does not encode: {e}", m.id)))
}

/// A merchant's currency. It was checked when the merchant was made, so one that is not
/// known is corrupt, never shown with a guessed exponent or left out of a code.
pub fn merchant_currency(m: &MerchantRow) -> Result<Currency, StoreError> {
    Currency::from_code(&m.currency).ok_or_else(|| {
        StoreError::Corrupt(format!("merchant {} has an unknown currency {:?}", m.id, m.currency))
    })
}

/// Image URLs of a payload.
pub fn qr_urls(payload: &str) -> (String, String) {
    let q = percent_encode(payload);
    (format!("/v1/qr.png?payload={q}"), format!("/v1/qr.svg?payload={q}"))
}

/// A payment as the API shows it. The merchant and the QR signing seed are needed only
/// for a pending dynamic code.
pub fn payment(p: &Payment, code: Option<(&MerchantRow, &[u8; 32])>) -> Result<api::Payment, StoreError> {
    let items = items(p)?;
    let pending = p.status() == PaymentStatus::Pending;
    let qr_payload = match (pending, &p.qr_ref, code) {
        (true, Some(_), Some((m, seed))) => Some(merchant_code(m, Some(p), seed)?),
        _ => None,
    };
    let urls = qr_payload.as_deref().map(qr_urls);
    let next_action = (pending && p.needs_confirm).then(|| "customer_confirm".to_string());
    Ok(api::Payment {
        id: p.id.clone(),
        out_trade_no: p.out_trade_no.clone(),
        merchant_id: p.merchant_id.clone(),
        terminal_id: p.terminal_id.clone(),
        amount: p.amount.amount_minor(),
        currency: p.amount.currency().code().to_string(),
        subject: p.subject.clone(),
        items,
        mode: p.mode.as_str().to_string(),
        status: p.status().as_str().to_string(),
        failure_code: p.failure_code().map(str::to_string),
        refunded_amount: p.refunded.amount_minor(),
        fee: p.fee.amount_minor(),
        customer_ref: p.customer_ref.clone(),
        created_at: p.created_at.clone(),
        paid_at: p.paid_at.clone(),
        expires_at: p.expires_at.clone(),
        next_action,
        qr_payload,
        qr_png_url: urls.as_ref().map(|u| u.0.clone()),
        qr_svg_url: urls.map(|u| u.1),
    })
}

/// The lines a stored payment was sold with. They were checked when it was created, so
/// lines that no longer parse are corrupt data, never an empty sale.
pub fn items(p: &Payment) -> Result<Vec<api::Item>, StoreError> {
    serde_json::from_str(&p.items).map_err(|e| StoreError::Corrupt(format!("payment {} lines: {e}", p.id)))
}

/// A transfer between customers as the API shows it, in its answer and in its event.
pub fn transfer(t: &TransferRow) -> api::Transfer {
    api::Transfer {
        id: t.id.clone(),
        from_customer_id: t.from_customer_id.clone(),
        to_customer_id: t.to_customer_id.clone(),
        amount: t.amount,
        currency: t.currency.clone(),
        client_ref: t.client_ref.clone(),
        created_at: t.created_at.clone(),
    }
}

/// An outbox event as the live feed shows it. Its `data` was written by the server as
/// JSON, so data that does not parse is corrupt, never an empty object.
pub fn event(row: &EventRow) -> Result<api::Event, StoreError> {
    let data = serde_json::from_str(&row.data)
        .map_err(|e| StoreError::Corrupt(format!("event {} data: {e}", row.id)))?;
    Ok(api::Event { id: row.id.clone(), kind: row.kind.clone(), created_at: row.created_at.clone(), data })
}

/// A refund as the API shows it.
pub fn refund(r: &RefundRow) -> api::Refund {
    api::Refund {
        id: r.id.clone(),
        payment_id: r.payment_id.clone(),
        out_refund_no: r.out_refund_no.clone(),
        amount: r.amount,
        currency: r.currency.clone(),
        fee_returned: r.fee_returned,
        status: r.status.clone(),
        reason: r.reason.clone(),
        created_at: r.created_at.clone(),
    }
}

/// A merchant as the API shows it.
pub fn merchant(m: &MerchantRow) -> Result<api::Merchant, StoreError> {
    let fee_bps = u32::try_from(m.fee_bps).map_err(|_| {
        StoreError::Corrupt(format!("merchant {} has a fee rate out of range: {}", m.id, m.fee_bps))
    })?;
    Ok(api::Merchant {
        id: m.id.clone(),
        name: m.name.clone(),
        mcc: m.mcc.clone(),
        city: m.city.clone(),
        country: m.country.clone(),
        currency: m.currency.clone(),
        fee_bps,
        timezone: m.timezone.clone(),
        status: m.status.clone(),
        created_at: m.created_at.clone(),
    })
}

/// A customer as the operator sees it.
pub fn customer(c: saoma_store::CustomerRow) -> api::Customer {
    api::Customer {
        id: c.id,
        phone: c.phone,
        name: c.name,
        created_at: c.created_at,
        tier: c.tier,
        frozen: c.frozen != 0,
    }
}
