//! Datasets, hospitals' contributions, reviews and privacy terms.

use super::*;

#[async_trait]
impl DatasetRepo for SqlStore {
    async fn insert_dataset(&self, stamp: Stamp, new: &NewDataset) -> StoreResult<Dataset> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO datasets (slug, title, description, state, created_by, created_at) \
             VALUES ($1, $2, $3, 'uploaded', $4, $5) RETURNING {DATASET_COLS}"
        ))
        .bind(&new.slug)
        .bind(&new.title)
        .bind(&new.description)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("a dataset with this slug"))?;
        let dataset = dataset_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::DatasetCreated {
                dataset: dataset.id,
                slug: dataset.slug.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(dataset)
    }

    async fn dataset(&self, id: DatasetId) -> StoreResult<Option<Dataset>> {
        let row = sqlx::query(&format!(
            "SELECT {DATASET_COLS} FROM datasets WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dataset_from).transpose()
    }

    async fn dataset_by_slug(&self, slug: &str) -> StoreResult<Option<Dataset>> {
        let row = sqlx::query(&format!(
            "SELECT {DATASET_COLS} FROM datasets WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dataset_from).transpose()
    }

    async fn datasets(&self) -> StoreResult<Vec<Dataset>> {
        let rows = sqlx::query(&format!("SELECT {DATASET_COLS} FROM datasets ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dataset_from).collect()
    }

    async fn insert_contribution(
        &self,
        stamp: Stamp,
        new: &NewContribution,
    ) -> StoreResult<AddContribution> {
        let mut tx = self.write_tx().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM datasets WHERE id = $1")
            .bind(new.dataset.0)
            .fetch_optional(&mut *tx)
            .await?;
        let state: DatasetState =
            parse(state.ok_or_else(|| StoreError::Missing(new.dataset.to_string()))?)?;
        if matches!(state, DatasetState::Approved | DatasetState::Rejected) {
            return Ok(AddContribution::DatasetClosed(state));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO contributions (dataset_id, hospital_id, uploaded_by, file_name, manifest, \
             object_id, content_sha256, size_bytes, state, report_json, created_at, \
             commitment_salt, key_scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'uploaded', 'null', $9, $10, $11) \
             RETURNING {CONTRIBUTION_COLS}"
        ))
        .bind(new.dataset.0)
        .bind(new.hospital.0)
        .bind(new.uploaded_by.0)
        .bind(&new.file_name)
        .bind(new.manifest.as_deref())
        .bind(new.object.to_hex())
        .bind(&new.content_sha256)
        .bind(new.size_bytes)
        .bind(stamp.at.0)
        .bind(&new.commitment_salt)
        .bind(&new.key_scope)
        .fetch_one(&mut *tx)
        .await?;
        let contribution = contribution_from(&row)?;
        sqlx::query("UPDATE datasets SET state = 'uploaded' WHERE id = $1")
            .bind(new.dataset.0)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::ContributionUploaded {
                contribution: contribution.id,
                dataset: contribution.dataset,
                hospital: contribution.hospital,
                content_commitment: crate::vault::commitment(
                    &new.commitment_salt,
                    &contribution.content_sha256,
                ),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(AddContribution::Added(Box::new(contribution)))
    }

    async fn record_validation(
        &self,
        stamp: Stamp,
        id: ContributionId,
        state: ContributionState,
        rows: Option<i64>,
        report: &serde_json::Value,
    ) -> StoreResult<Option<Contribution>> {
        let report_json = serde_json::to_string(report)?;
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE contributions SET state = $2, row_count = $3, report_json = $4, \
             object_id = CASE WHEN $2 = 'rejected' THEN NULL ELSE object_id END \
             WHERE id = $1 AND state = 'uploaded' RETURNING {CONTRIBUTION_COLS}"
        ))
        .bind(id.0)
        .bind(state.as_str())
        .bind(rows)
        .bind(&report_json)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let contribution = contribution_from(&row)?;
        // A dataset is validated once no contribution awaits validation and at least one
        // passed; rejected uploads are refused files, they do not block the dataset.
        sqlx::query(
            "UPDATE datasets SET state = CASE \
               WHEN EXISTS (SELECT 1 FROM contributions c WHERE c.dataset_id = $1 AND c.state = 'uploaded') \
                 THEN 'uploaded' \
               WHEN EXISTS (SELECT 1 FROM contributions c WHERE c.dataset_id = $1 AND c.state = 'validated') \
                 THEN 'validated' \
               ELSE 'uploaded' END \
             WHERE id = $1 AND state IN ('uploaded', 'validated')",
        )
        .bind(contribution.dataset.0)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::ContributionValidated {
                contribution: id,
                dataset: contribution.dataset,
                accepted: state == ContributionState::Validated,
                report_commitment: crate::vault::commitment(
                    contribution.commitment_salt.as_deref().unwrap_or_default(),
                    &crate::vault::sha256_hex(report_json.as_bytes()),
                ),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(contribution))
    }

    async fn contribution(&self, id: ContributionId) -> StoreResult<Option<Contribution>> {
        let row = sqlx::query(&format!(
            "SELECT {CONTRIBUTION_COLS} FROM contributions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(contribution_from).transpose()
    }

    async fn contributions(&self, dataset: DatasetId) -> StoreResult<Vec<Contribution>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONTRIBUTION_COLS} FROM contributions WHERE dataset_id = $1 ORDER BY id"
        ))
        .bind(dataset.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(contribution_from).collect()
    }

    async fn review_dataset(
        &self,
        stamp: Stamp,
        id: DatasetId,
        review: &crate::model::DatasetReview,
    ) -> StoreResult<ReviewDataset> {
        let approve = review.approve;
        let note = review.note.as_deref();
        let checklist = serde_json::to_string(&review.checklist)?;
        let new_state = if approve {
            DatasetState::Approved
        } else {
            DatasetState::Rejected
        };
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE datasets SET state = $2, reviewed_by = $3, reviewed_at = $4, review_note = $5, \
             review_checklist = $6 WHERE id = $1 AND state = 'validated' RETURNING {DATASET_COLS}"
        ))
        .bind(id.0)
        .bind(new_state.as_str())
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .bind(note)
        .bind(&checklist)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM datasets WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            return match state {
                Some(state) => Ok(ReviewDataset::NotReviewable(parse(state)?)),
                None => Err(StoreError::Missing(id.to_string())),
            };
        };
        record(
            &mut tx,
            stamp,
            AuditEvent::DatasetReviewed {
                dataset: id,
                approved: approve,
                failed_items: review.failed(),
                checklist_sha256: crate::vault::sha256_hex(checklist.as_bytes()),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ReviewDataset::Reviewed(dataset_from(&row)?))
    }

    async fn dataset_usage(&self, dataset: DatasetId) -> StoreResult<Vec<DatasetUse>> {
        let rows = sqlx::query(
            "SELECT competition_id, team_id, job_id, purpose, micro_epsilon, charged_at \
             FROM privacy_charges WHERE dataset_id = $1 ORDER BY id",
        )
        .bind(dataset.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DatasetUse {
                    competition: CompetitionId(row.try_get("competition_id")?),
                    team: OrgId(row.try_get("team_id")?),
                    job: row.try_get::<Option<i64>, _>("job_id")?.map(JobId),
                    purpose: parse(row.try_get("purpose")?)?,
                    epsilon: epsilon_of_micro(row.try_get("micro_epsilon")?),
                    at: ts(row, "charged_at")?,
                })
            })
            .collect()
    }

    async fn set_privacy_terms(
        &self,
        stamp: Stamp,
        dataset: DatasetId,
        hospital: OrgId,
        terms: &DatasetPrivacyTerms,
    ) -> StoreResult<()> {
        let per_team = micro_epsilon_limit(terms.per_team_epsilon)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let total = micro_epsilon_limit(terms.total_epsilon)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO dataset_privacy_terms (dataset_id, hospital_id, min_level, per_team_micro, \
             total_micro, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (dataset_id, hospital_id) DO UPDATE SET min_level = excluded.min_level, \
             per_team_micro = excluded.per_team_micro, total_micro = excluded.total_micro, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(dataset.0)
        .bind(hospital.0)
        .bind(terms.min_level.as_str())
        .bind(per_team)
        .bind(total)
        .bind(stamp.actor.map(|a| a.0))
        .bind(stamp.at.0)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            stamp,
            AuditEvent::DatasetPrivacyTermsSet {
                dataset,
                hospital,
                min_level: terms.min_level,
                per_team_epsilon: epsilon_of_micro(per_team),
                total_epsilon: epsilon_of_micro(total),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_dataset_suspension(
        &self,
        stamp: Stamp,
        dataset: DatasetId,
        hospital: OrgId,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        suspensions::set_suspension(self, stamp, dataset, hospital, reason).await
    }

    async fn withdraw_contribution(
        &self,
        stamp: Stamp,
        id: ContributionId,
        reason: &str,
    ) -> StoreResult<Option<(Contribution, Option<ObjectId>)>> {
        withdrawals::withdraw(self, stamp, id, reason).await
    }

    async fn dataset_suspensions(
        &self,
        dataset: DatasetId,
    ) -> StoreResult<Vec<crate::model::DatasetSuspension>> {
        let mut conn = self.pool.acquire().await?;
        suspensions::suspensions_of(&mut conn, dataset).await
    }

    async fn dataset_privacy(
        &self,
        dataset: DatasetId,
        defaults: &DatasetPrivacyTerms,
    ) -> StoreResult<DatasetPrivacy> {
        let mut conn = self.pool.acquire().await?;
        let (caps, by_hospital) = terms_in(&mut conn, dataset, defaults).await?;
        let (total, most) = synthetic::teams_spent(&mut conn, dataset).await?;
        let synthetic = synthetic::synthetic_spent(&mut conn, dataset).await?;
        Ok(DatasetPrivacy {
            dataset,
            effective: DatasetPrivacyTerms {
                min_level: caps.min_level,
                per_team_epsilon: epsilon_of_micro(caps.per_team_micro),
                total_epsilon: epsilon_of_micro(caps.total_micro),
            },
            by_hospital,
            spent_total: epsilon_of_micro(total),
            spent_most_by_one_team: epsilon_of_micro(most),
            spent_synthetic: epsilon_of_micro(synthetic),
            suspensions: suspensions::suspensions_of(&mut conn, dataset).await?,
        })
    }
}
