//! The merchant's catalogue and stock (`/v1/merchant/products`), and refunds of items.

use crate::{Client, ClientResult};
use saoma_api as api;

impl Client {
    /// Adds a product to the catalogue.
    pub async fn create_product(&self, req: &api::CreateProductRequest) -> ClientResult<api::Product> {
        self.post("/v1/merchant/products", req).await
    }

    /// A page of the catalogue: the products matching `query`.
    pub async fn products(&self, query: &api::ProductsQuery) -> ClientResult<api::Page<api::Product>> {
        self.get(&format!("/v1/merchant/products{}", api::to_query(query))).await
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

    /// A product's stock movements, newest first, a page at a time.
    pub async fn stock_movements(
        &self,
        id: &str,
        page: &api::PageQuery,
    ) -> ClientResult<api::Page<api::StockMovement>> {
        self.get(&format!("/v1/merchant/products/{id}/movements{}", api::to_query(page))).await
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
