//! Hospitals and teams, their admission and members.

use super::*;

#[async_trait]
impl OrgRepo for SqlStore {
    async fn insert_org(
        &self,
        stamp: Stamp,
        kind: OrgKind,
        name: &str,
        statement: &str,
        applicant: AccountId,
    ) -> StoreResult<Organization> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO organizations (kind, name, statement, admission, applied_by, created_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5) RETURNING {ORG_COLS}"
        ))
        .bind(kind.as_str())
        .bind(name)
        .bind(statement)
        .bind(applicant.0)
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("an organization with this name"))?;
        let org = org_from(&row)?;
        let joined =
            sqlx::query("UPDATE accounts SET org_id = $1 WHERE id = $2 AND org_id IS NULL")
                .bind(org.id.0)
                .bind(applicant.0)
                .execute(&mut *tx)
                .await?;
        if joined.rows_affected() != 1 {
            // Dropping the transaction rolls the new organization back.
            return Err(StoreError::Duplicate(
                "an organization membership for this account".to_owned(),
            ));
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::AdmissionRequested {
                org: org.id,
                kind,
                applicant,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    async fn org(&self, id: OrgId) -> StoreResult<Option<Organization>> {
        let row = sqlx::query(&format!(
            "SELECT {ORG_COLS} FROM organizations WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(org_from).transpose()
    }

    async fn orgs(&self, admission: Option<AdmissionState>) -> StoreResult<Vec<Organization>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORG_COLS} FROM organizations WHERE (CAST($1 AS TEXT) IS NULL OR admission = $1) ORDER BY id"
        ))
        .bind(admission.map(AdmissionState::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(org_from).collect()
    }

    async fn review_org(
        &self,
        stamp: Stamp,
        id: OrgId,
        admission: AdmissionState,
        tier: Option<Tier>,
        note: Option<&str>,
    ) -> StoreResult<Option<Organization>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE organizations SET admission = $2, tier = $3, reviewed_by = $4, \
             reviewed_at = $5, review_note = $6 WHERE id = $1 RETURNING {ORG_COLS}"
        ))
        .bind(id.0)
        .bind(admission.as_str())
        .bind(tier.map(Tier::as_str))
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .bind(note)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        record(
            &mut tx,
            stamp,
            AuditEvent::AdmissionReviewed {
                org: id,
                approved: admission == AdmissionState::Approved,
                tier,
            },
        )
        .await?;
        tx.commit().await?;
        org_from(&row).map(Some)
    }

    async fn add_member(&self, stamp: Stamp, org: OrgId, account: AccountId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let joined =
            sqlx::query("UPDATE accounts SET org_id = $1 WHERE id = $2 AND org_id IS NULL")
                .bind(org.0)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
        if joined.rows_affected() != 1 {
            return Ok(false);
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::TeamMemberAdded { team: org, account },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn members(&self, org: OrgId) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE org_id = $1 ORDER BY id"
        ))
        .bind(org.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from).collect()
    }
}
