//! The operator's risk desk: rules, tiers, freezes and the declines kept for explanation.

use crate::{Client, ClientResult};
use saoma_api as api;

fn risk_reason(reason: &str) -> api::RiskReason {
    api::RiskReason { reason: reason.into() }
}

impl Client {
    /// The risk rules in force.
    pub async fn risk_rules(&self) -> ClientResult<api::RiskRules> {
        self.get("/v1/admin/risk/rules").await
    }

    /// Replaces the risk rules; answers them with their new version.
    pub async fn set_risk_rules(&self, rules: &api::RiskRules) -> ClientResult<api::RiskRules> {
        self.call("PUT", "/v1/admin/risk/rules", Some(rules)).await
    }

    /// A customer as the operator sees it (tier, frozen).
    pub async fn customer(&self, id: &str) -> ClientResult<api::Customer> {
        self.get(&format!("/v1/admin/customers/{id}")).await
    }

    /// Freezes a wallet: it can no longer pay or transfer.
    pub async fn freeze(&self, customer_id: &str, reason: &str) -> ClientResult<api::Customer> {
        self.post(&format!("/v1/admin/customers/{customer_id}/freeze"), &risk_reason(reason)).await
    }

    /// Unfreezes a wallet.
    pub async fn unfreeze(&self, customer_id: &str, reason: &str) -> ClientResult<api::Customer> {
        self.post(&format!("/v1/admin/customers/{customer_id}/unfreeze"), &risk_reason(reason)).await
    }

    /// Signs a customer out everywhere (a stolen phone).
    pub async fn revoke_sessions(
        &self,
        customer_id: &str,
        reason: &str,
    ) -> ClientResult<api::SessionsRevoked> {
        self.post(&format!("/v1/admin/customers/{customer_id}/sessions/revoke"), &risk_reason(reason)).await
    }

    /// Signs this wallet session out.
    pub async fn end_session(&self) -> ClientResult<()> {
        self.call_no_content("DELETE", "/v1/wallet/session").await
    }

    /// Moves a customer to another risk tier.
    pub async fn set_tier(&self, customer_id: &str, tier: &str) -> ClientResult<api::Customer> {
        let change = api::TierChange { tier: tier.into() };
        self.call("PUT", &format!("/v1/admin/customers/{customer_id}/tier"), Some(&change)).await
    }

    /// Declines kept for explanation, of one customer or terminal (`subject_id`) or one
    /// payment (`payment_id`), newest first.
    pub async fn risk_decisions(
        &self,
        subject_id: Option<&str>,
        payment_id: Option<&str>,
    ) -> ClientResult<api::Page<api::RiskDecision>> {
        let q = api::RiskDecisionsQuery {
            subject_id: subject_id.map(str::to_string),
            payment_id: payment_id.map(str::to_string),
            ..Default::default()
        };
        self.get(&format!("/v1/admin/risk/decisions{}", api::to_query(&q))).await
    }
}
