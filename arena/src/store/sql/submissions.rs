//! Submissions, daily limits, release states and the privacy budget.

use super::*;

#[async_trait]
impl SubmissionRepo for SqlStore {
    /// The count and the insert are one unit under the backend's write lock.
    async fn insert_submission(
        &self,
        stamp: Stamp,
        new: &NewSubmission,
        daily_limit: u32,
    ) -> StoreResult<InsertSubmission> {
        let day = stamp.at.utc_day();
        let mut tx = self.write_tx().await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM submissions WHERE competition_id = $1 AND team_id = $2 AND utc_day = $3",
        )
        .bind(new.competition.0)
        .bind(new.team.0)
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
        if used >= i64::from(daily_limit) {
            return Ok(InsertSubmission::LimitReached { used });
        }
        let row = sqlx::query(&format!(
            "INSERT INTO submissions (competition_id, team_id, submitted_by, phase, object_id, \
             module_sha256, size_bytes, utc_day, status, created_at, kind, analysis_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued_dummy', $9, $10, $11) \
             RETURNING {SUBMISSION_COLS}"
        ))
        .bind(new.competition.0)
        .bind(new.team.0)
        .bind(new.submitted_by.0)
        .bind(&new.phase)
        .bind(new.object.to_hex())
        .bind(&new.module_sha256)
        .bind(new.size_bytes)
        .bind(day)
        .bind(stamp.at.0)
        .bind(new.kind.as_str())
        .bind(
            new.analysis
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
        )
        .fetch_one(&mut *tx)
        .await?;
        let submission = submission_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::SubmissionReceived {
                submission: submission.id,
                competition: submission.competition,
                team: submission.team,
                phase: submission.phase.clone(),
                module_sha256: submission.module_sha256.clone(),
            },
        )
        .await?;
        let job = insert_job(
            &mut tx,
            stamp,
            &submission,
            JobKind::DummyRun,
            new.max_attempts,
        )
        .await?;
        tx.commit().await?;
        Ok(InsertSubmission::Inserted {
            submission: Box::new(submission),
            job: Box::new(job),
        })
    }

    async fn submission(&self, id: SubmissionId) -> StoreResult<Option<Submission>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLS} FROM submissions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(submission_from).transpose()
    }

    async fn submissions(
        &self,
        competition: CompetitionId,
        team: Option<OrgId>,
    ) -> StoreResult<Vec<Submission>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLS} FROM submissions \
             WHERE competition_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR team_id = $2) ORDER BY id DESC"
        ))
        .bind(competition.0)
        .bind(team.map(|t| t.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(submission_from).collect()
    }

    async fn submissions_today(
        &self,
        competition: CompetitionId,
        team: OrgId,
        utc_day: i64,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM submissions WHERE competition_id = $1 AND team_id = $2 AND utc_day = $3",
        )
        .bind(competition.0)
        .bind(team.0)
        .bind(utc_day)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn release_state(
        &self,
        competition: CompetitionId,
        team: OrgId,
    ) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT state_json FROM release_states WHERE competition_id = $1 AND team_id = $2",
        )
        .bind(competition.0)
        .bind(team.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    }

    async fn budget(&self, query: &BudgetQuery) -> StoreResult<Vec<BudgetUse>> {
        let mut conn = self.pool.acquire().await?;
        let mut uses = Vec::with_capacity(query.datasets.len());
        for dataset in &query.datasets {
            let (caps, _) = terms_in(&mut conn, *dataset, &query.default_terms).await?;
            let (here, anywhere, everyone) =
                spent_in(&mut conn, query.team, *dataset, query.competition).await?;
            let remaining = (query.competition_cap_micro - here)
                .min(caps.per_team_micro - anywhere)
                .min(caps.total_micro - everyone)
                .max(0);
            uses.push(BudgetUse {
                dataset: *dataset,
                total: epsilon_of_micro(query.competition_cap_micro),
                spent: epsilon_of_micro(here),
                dataset_cap: epsilon_of_micro(caps.per_team_micro),
                dataset_spent: epsilon_of_micro(anywhere),
                remaining: epsilon_of_micro(remaining),
            });
        }
        Ok(uses)
    }

    async fn scored_submissions(
        &self,
        competition: CompetitionId,
    ) -> StoreResult<Vec<ScoredSubmission>> {
        let rows = sqlx::query(
            "SELECT s.id, s.team_id, o.name AS team_name, s.released_public_score, \
             s.exact_public_score, s.private_score, s.released_private_score, s.created_at, \
             s.release_at \
             FROM submissions s JOIN organizations o ON o.id = s.team_id \
             WHERE s.competition_id = $1 AND s.status = 'completed' AND s.outcome = 'ok' \
             AND (s.released_public_score IS NOT NULL OR s.private_score IS NOT NULL) \
             ORDER BY s.id",
        )
        .bind(competition.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScoredSubmission {
                    submission: SubmissionId(row.try_get("id")?),
                    team: OrgId(row.try_get("team_id")?),
                    team_name: row.try_get("team_name")?,
                    released_public_score: row.try_get("released_public_score")?,
                    exact_public_score: row.try_get("exact_public_score")?,
                    private_score: row.try_get("private_score")?,
                    released_private_score: row.try_get("released_private_score")?,
                    created_at: ts(row, "created_at")?,
                    release_at: ts_opt(row, "release_at")?,
                })
            })
            .collect()
    }

    async fn site_score_releases(
        &self,
        competition: CompetitionId,
        hospital: Option<OrgId>,
    ) -> StoreResult<Vec<SiteScoreRow>> {
        // One statement for "one hospital" and "all": hospital 0 (no organization has it)
        // stands for every hospital; a typed sentinel prepares on PostgreSQL as NULL does not.
        let rows = sqlx::query(
            "SELECT r.submission_id, s.team_id, o.name AS team_name, r.hospital_id, \
             r.released_score, r.epsilon \
             FROM site_score_releases r \
             JOIN submissions s ON s.id = r.submission_id \
             JOIN organizations o ON o.id = s.team_id \
             WHERE s.competition_id = $1 AND ($2 = 0 OR r.hospital_id = $2) \
             ORDER BY r.hospital_id, r.submission_id",
        )
        .bind(competition.0)
        .bind(hospital.map_or(0, |h| h.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SiteScoreRow {
                    submission: SubmissionId(row.try_get("submission_id")?),
                    team: OrgId(row.try_get("team_id")?),
                    team_name: row.try_get("team_name")?,
                    release: SiteScoreRelease {
                        hospital: OrgId(row.try_get("hospital_id")?),
                        released_score: row.try_get("released_score")?,
                        epsilon: row.try_get("epsilon")?,
                    },
                })
            })
            .collect()
    }
}
