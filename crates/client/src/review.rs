//! Merchant review (KYC): the merchant's application and the operator's decisions.

use crate::{Client, ClientResult};
use saoma_api as api;

impl Client {
    /// Applies for review (owner key).
    pub async fn apply(&self, application: &api::Application) -> ClientResult<api::ApplicationView> {
        self.call("PUT", "/v1/merchant/application", Some(application)).await
    }

    /// The merchant's own application (merchant or manager key).
    pub async fn own_application(&self) -> ClientResult<api::ApplicationView> {
        self.get("/v1/merchant/application").await
    }

    /// A merchant's application (operator).
    pub async fn application(&self, merchant_id: &str) -> ClientResult<api::ApplicationView> {
        self.get(&format!("/v1/admin/merchants/{merchant_id}/application")).await
    }

    async fn decide(&self, merchant_id: &str, what: &str, reason: &str) -> ClientResult<api::Merchant> {
        let reason = api::ReviewReason { reason: Some(reason.into()) };
        self.post(&format!("/v1/admin/merchants/{merchant_id}/{what}"), &reason).await
    }

    /// Rejects an application, with the reason the merchant will see.
    pub async fn reject_merchant(&self, merchant_id: &str, reason: &str) -> ClientResult<api::Merchant> {
        self.decide(merchant_id, "reject", reason).await
    }

    /// Asks the merchant for more (it then applies again).
    pub async fn request_info(&self, merchant_id: &str, reason: &str) -> ClientResult<api::Merchant> {
        self.decide(merchant_id, "request-info", reason).await
    }

    /// Reinstates a suspended merchant.
    pub async fn reinstate_merchant(&self, merchant_id: &str, reason: &str) -> ClientResult<api::Merchant> {
        self.decide(merchant_id, "reinstate", reason).await
    }
}
