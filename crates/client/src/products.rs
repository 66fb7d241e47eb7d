//! The merchant's catalogue and stock (`/v1/merchant/products`), and refunds of items.

use crate::{Client, ClientResult};
use saoma_api as api;

impl Client {
    /// Adds a product to the catalogue.
    pub async fn create_product(&self, req: &api::CreateProductRequest) -> ClientResult<api::Product> {
        self.post("/v1/merchant/products", req).await
    }

    /// A page of the catalogue; `query` is appended as is (`q=tea&low_stock=true&limit=10`).
    pub async fn products(&self, query: &str) -> ClientResult<api::Page<api::Product>> {
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        self.get(&format!("/v1/merchant/products{q}")).await
    }

    /// One product.
    pub async fn product(&self, id: &str) -> ClientResult<api::Product> {
        self.get(&format!("/v1/merchant/products/{id}")).await
    }

    /// Changes the fields given.
    pub async fn update_product(
        &self,
        id: &str,
        req: &api::UpdateProductRequest,
    ) -> ClientResult<api::Product> {
        self.call("PATCH", &format!("/v1/merchant/products/{id}"), Some(req)).await
    }

    /// Adds (or, negative, removes) units by hand, with the reason.
    pub async fn adjust_stock(&self, id: &str, delta: i64, reason: &str) -> ClientResult<api::Product> {
        let req = api::StockAdjustmentRequest { delta, reason: reason.into() };
        self.post(&format!("/v1/merchant/products/{id}/adjustments"), &req).await
    }

    /// A product's stock movements, newest first; `query` as in [`Client::products`].
    pub async fn stock_movements(
        &self,
        id: &str,
        query: &str,
    ) -> ClientResult<api::Page<api::StockMovement>> {
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        self.get(&format!("/v1/merchant/products/{id}/movements{q}")).await
    }

    /// A refund with any of its fields (items coming back, amount left out).
    pub async fn refund_with(
        &self,
        payment_id: &str,
        req: &api::CreateRefundRequest,
    ) -> ClientResult<api::Refund> {
        self.post(&format!("/v1/payments/{payment_id}/refunds"), req).await
    }
}
