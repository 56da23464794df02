//! Certificates the platform signed.

use super::*;
use crate::certificate::CertificateKind;

/// The anchoring entry's evidence code comes from the outbox row of its
/// `certificate_issued` event (subject `certificate:<serial>`).
const CERTIFICATE_SELECT: &str = "SELECT c.serial, c.kind, c.subject, c.dataset_id, \
     c.competition_id, c.body_json, c.body_sha256, c.signature, c.issued_at, \
     (SELECT a.evidence FROM audit_events a WHERE a.subject = 'certificate:' || c.serial \
      AND a.kind = 'certificate_issued' ORDER BY a.id LIMIT 1) AS evidence \
     FROM certificates c";

fn certificate_from_row(row: &DbRow) -> StoreResult<StoredCertificate> {
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "registration" => CertificateKind::Registration,
        "result" => CertificateKind::Result,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown certificate kind `{other}`"
            )));
        }
    };
    Ok(StoredCertificate {
        serial: row.try_get("serial")?,
        kind,
        subject: row.try_get("subject")?,
        dataset: row.try_get::<Option<i64>, _>("dataset_id")?.map(DatasetId),
        competition: row
            .try_get::<Option<i64>, _>("competition_id")?
            .map(CompetitionId),
        body_json: row.try_get("body_json")?,
        body_sha256: row.try_get("body_sha256")?,
        signature: row.try_get("signature")?,
        issued_at: ts(row, "issued_at")?,
        evidence: row.try_get("evidence")?,
    })
}

#[async_trait]
impl CertificateRepo for SqlStore {
    async fn insert_certificate(
        &self,
        stamp: Stamp,
        certificate: &StoredCertificate,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO certificates (serial, kind, subject, dataset_id, competition_id, \
             body_json, body_sha256, signature, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (serial) DO NOTHING",
        )
        .bind(&certificate.serial)
        .bind(certificate.kind.as_str())
        .bind(&certificate.subject)
        .bind(certificate.dataset.map(|d| d.0))
        .bind(certificate.competition.map(|c| c.0))
        .bind(&certificate.body_json)
        .bind(&certificate.body_sha256)
        .bind(&certificate.signature)
        .bind(certificate.issued_at.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if inserted {
            let event = AuditEvent::CertificateIssued {
                certificate: certificate.serial.clone(),
                kind: certificate.kind,
                subject: certificate.subject.clone(),
                certificate_sha256: certificate.body_sha256.clone(),
            };
            record(&mut tx, stamp, event).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn certificate(&self, serial: &str) -> StoreResult<Option<StoredCertificate>> {
        sqlx::query(&format!("{CERTIFICATE_SELECT} WHERE c.serial = $1"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(certificate_from_row)
            .transpose()
    }

    async fn competition_certificates(
        &self,
        competition: CompetitionId,
    ) -> StoreResult<Vec<StoredCertificate>> {
        sqlx::query(&format!(
            "{CERTIFICATE_SELECT} WHERE c.competition_id = $1 ORDER BY c.serial"
        ))
        .bind(competition.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(certificate_from_row)
        .collect()
    }
}
