//! Operators and API keys: issuing, listing, revoking and rotating.

use crate::{Client, ClientResult};
use saoma_api as api;
use serde_json::json;

fn rotation(grace_seconds: i64) -> api::Rotation {
    api::Rotation { grace_seconds: Some(grace_seconds) }
}

fn key_request(role: &str, terminal_id: Option<&str>) -> api::CreateKeyRequest {
    api::CreateKeyRequest { terminal_id: terminal_id.map(str::to_string), role: role.into() }
}

impl Client {
    /// The key id this client signs with, if it holds a key.
    pub fn key_id(&self) -> Option<&str> {
        match &self.credentials {
            crate::Credentials::Key { key_id, .. } => Some(key_id),
            _ => None,
        }
    }

    /// The newest payments the key may see (a terminal key: its terminal's).
    pub async fn list_payments(&self) -> ClientResult<api::Page<api::Payment>> {
        let q = api::PaymentsQuery { limit: Some(100), ..Default::default() };
        self.get(&format!("/v1/payments{}", api::to_query(&q))).await
    }

    /// Adds an operator with a role (admin); the answer holds its `token`, shown once.
    pub async fn create_operator(&self, name: &str, role: &str) -> ClientResult<api::OperatorCreated> {
        self.post("/v1/admin/operators", &api::NewOperator { name: name.into(), role: role.into() }).await
    }

    /// Revokes an operator's token (admin).
    pub async fn revoke_operator(&self, id: &str) -> ClientResult<api::OperatorRevoked> {
        self.post(&format!("/v1/admin/operators/{id}/revoke"), &json!({})).await
    }

    /// Issues a key of any role for a merchant (admin): `merchant`, `manager`, `terminal`.
    pub async fn create_key_with_role(
        &self,
        merchant_id: &str,
        role: &str,
        terminal_id: Option<&str>,
    ) -> ClientResult<api::KeyCreated> {
        self.post(&format!("/v1/admin/merchants/{merchant_id}/keys"), &key_request(role, terminal_id)).await
    }

    /// Revokes any key at once (admin).
    pub async fn admin_revoke_key(&self, key_id: &str) -> ClientResult<api::ApiKey> {
        self.post(&format!("/v1/admin/keys/{key_id}/revoke"), &json!({})).await
    }

    /// Replaces a key (admin); the old one works `grace_seconds` more.
    pub async fn admin_rotate_key(&self, key_id: &str, grace_seconds: i64) -> ClientResult<api::KeyCreated> {
        self.post(&format!("/v1/admin/keys/{key_id}/rotate"), &rotation(grace_seconds)).await
    }

    /// The merchant's keys, without secrets (owner key).
    pub async fn own_keys(&self) -> ClientResult<api::Page<api::ApiKey>> {
        self.get("/v1/merchant/keys").await
    }

    /// Issues a key for the merchant's own staff or tills (owner key).
    pub async fn own_create_key(
        &self,
        role: &str,
        terminal_id: Option<&str>,
    ) -> ClientResult<api::KeyCreated> {
        self.post("/v1/merchant/keys", &key_request(role, terminal_id)).await
    }

    /// Revokes one of the merchant's keys at once (owner key).
    pub async fn own_revoke_key(&self, key_id: &str) -> ClientResult<api::ApiKey> {
        self.post(&format!("/v1/merchant/keys/{key_id}/revoke"), &json!({})).await
    }

    /// Replaces one of the merchant's keys (owner key); the old one works `grace_seconds` more.
    pub async fn own_rotate_key(&self, key_id: &str, grace_seconds: i64) -> ClientResult<api::KeyCreated> {
        self.post(&format!("/v1/merchant/keys/{key_id}/rotate"), &rotation(grace_seconds)).await
    }
}
