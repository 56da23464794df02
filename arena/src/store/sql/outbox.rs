//! The audit outbox: events waiting for the ledger, and their receipts.

use super::*;

#[async_trait]
impl AuditOutbox for SqlStore {
    async fn undelivered_events(
        &self,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE delivered_at IS NULL AND at <= $2 \
             ORDER BY at, id LIMIT $1"
        ))
        .bind(limit)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }

    async fn mark_delivered(
        &self,
        receipts: &[(AuditEventId, String)],
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for (id, evidence) in receipts {
            sqlx::query("UPDATE audit_events SET delivered_at = $2, evidence = $3 WHERE id = $1")
                .bind(id.0)
                .bind(at.0)
                .bind(evidence)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn events_about(&self, subject: &str) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE subject = $1 ORDER BY id"
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }

    async fn recent_events(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_events ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from).collect()
    }
}
