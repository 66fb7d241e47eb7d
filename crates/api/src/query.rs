//! The query strings of the API's `GET` routes, typed: the server parses them with these
//! types, the OpenAPI document describes them from these types, and `saoma-client` builds
//! its query strings from them ([`to_query`]), so the three cannot drift apart.

use serde::{Deserialize, Serialize};

/// A query as the client sends it: `?a=1&b=x%20y`, fields left out when `None`, values
/// percent-encoded; empty when no field is set.
pub fn to_query<Q: Serialize>(q: &Q) -> String {
    match serde_urlencoded::to_string(q) {
        Ok(s) if s.is_empty() => String::new(),
        Ok(s) => format!("?{s}"),
        // Every query type here is a flat struct of strings, numbers and booleans, which
        // `serde_urlencoded` always encodes.
        Err(e) => unreachable!("a query type of saoma-api did not encode: {e}"),
    }
}

/// `?limit=&cursor=` of a list with no filter of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `?wait=&out_trade_no=&limit=&cursor=` of the payment routes: one payment (long-polled
/// up to `wait` seconds while pending), or a page of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `?status=&limit=&cursor=` of the webhook delivery log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `?limit=&cursor=&q=&low_stock=&active=` of the product list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_stock: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `?subject_id=&payment_id=&limit=&cursor=` of the risk decisions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RiskDecisionsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `?limit=` of a short list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `?days=` of the sales report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SalesReportQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
}

/// `?status=&cursor=&limit=` of the merchant review queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MerchantsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `?q=&cursor=&limit=` of the customer list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `?cursor=&limit=` of the audit log (the cursor is a record's sequence number).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `?payload=` of the QR image routes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayloadQuery {
    pub payload: String,
}

/// `?code=` of the barcode route.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BarcodeQuery {
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_leaves_out_what_is_not_set_and_encodes_what_is() {
        assert_eq!(to_query(&PageQuery::default()), "");
        let q = PaymentsQuery { out_trade_no: Some("A&B =1".into()), wait: Some(5), ..Default::default() };
        assert_eq!(to_query(&q), "?wait=5&out_trade_no=A%26B+%3D1");
        let back: PaymentsQuery = serde_urlencoded::from_str(&to_query(&q)[1..]).unwrap();
        assert_eq!(back.out_trade_no.as_deref(), Some("A&B =1"));
        assert_eq!(
            to_query(&ProductsQuery { low_stock: Some(true), ..Default::default() }),
            "?low_stock=true"
        );
    }
}
