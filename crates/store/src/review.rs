//! Merchant review (KYC) applications.

use crate::{MerchantApplicationRow, Store, StoreResult, WriteTx};

impl Store {
    /// A merchant's application, if it applied.
    pub async fn application(&self, merchant_id: &str) -> StoreResult<Option<MerchantApplicationRow>> {
        Ok(sqlx::query_as("SELECT * FROM merchant_applications WHERE merchant_id = $1")
            .bind(merchant_id)
            .fetch_optional(&self.read)
            .await?)
    }
}

impl WriteTx {
    /// A merchant's application, locked.
    pub async fn application(&mut self, merchant_id: &str) -> StoreResult<Option<MerchantApplicationRow>> {
        let sql = format!("SELECT * FROM merchant_applications WHERE merchant_id = $1{}", self.lock());
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(merchant_id).fetch_optional(self.conn()).await?)
    }

    /// Stores an application, replacing an earlier one of the merchant.
    pub async fn put_application(&mut self, a: &MerchantApplicationRow) -> StoreResult<()> {
        sqlx::query("DELETE FROM merchant_applications WHERE merchant_id = $1")
            .bind(&a.merchant_id)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO merchant_applications (merchant_id, legal_name, licence_number, owner_name, \
               owner_id_number, id_number_tail, documents, status, reason, submitted_at, decided_at, decided_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&a.merchant_id)
        .bind(&a.legal_name)
        .bind(&a.licence_number)
        .bind(&a.owner_name)
        .bind(&a.owner_id_number)
        .bind(&a.id_number_tail)
        .bind(&a.documents)
        .bind(&a.status)
        .bind(&a.reason)
        .bind(&a.submitted_at)
        .bind(&a.decided_at)
        .bind(&a.decided_by)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
