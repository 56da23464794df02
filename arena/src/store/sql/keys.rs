//! Wrapped data keys.

use super::*;

#[async_trait]
impl KeyRepo for SqlStore {
    async fn data_key(&self, scope: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT wrapped_key FROM data_keys WHERE scope = $1")
                .bind(scope)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn insert_data_key(
        &self,
        scope: &str,
        wrapped: &[u8],
        at: Timestamp,
    ) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO data_keys (scope, wrapped_key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(wrapped)
        .bind(at.0)
        .execute(&self.pool)
        .await?;
        self.data_key(scope)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("data key for {scope}")))
    }
}
