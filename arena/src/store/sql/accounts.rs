//! Accounts and their credentials (sessions and API tokens).

use super::*;

#[async_trait]
impl AccountRepo for SqlStore {
    async fn count_accounts(&self, role: Role) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE role = $1")
                .bind(role.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn insert_account(&self, stamp: Stamp, new: &NewAccount) -> StoreResult<Account> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO accounts (email, display_name, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {ACCOUNT_COLS}"
        ))
        .bind(&new.email)
        .bind(&new.display_name)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(stamp.at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("an account with this e-mail"))?;
        let account = account_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::AccountCreated {
                account: account.id,
                role: account.role,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<(Account, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS}, password_hash FROM accounts WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((account_from(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    async fn set_account_disabled(
        &self,
        stamp: Stamp,
        id: AccountId,
        disabled: bool,
    ) -> StoreResult<Option<Account>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts SET disabled = $2 WHERE id = $1 RETURNING {ACCOUNT_COLS}"
        ))
        .bind(id.0)
        .bind(disabled)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if disabled {
            sqlx::query(
                "UPDATE credentials SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
            )
            .bind(id.0)
            .bind(stamp.at.0)
            .execute(&mut *tx)
            .await?;
        }
        record(
            &mut tx,
            stamp,
            AuditEvent::AccountDisabled {
                account: id,
                disabled,
            },
        )
        .await?;
        tx.commit().await?;
        account_from(&row).map(Some)
    }

    async fn insert_credential(
        &self,
        stamp: Stamp,
        new: &NewCredential,
    ) -> StoreResult<Credential> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO credentials (account_id, kind, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CREDENTIAL_COLS}"
        ))
        .bind(new.account.0)
        .bind(new.kind.as_str())
        .bind(&new.name)
        .bind(new.token_hash.0.as_slice())
        .bind(stamp.at.0)
        .bind(new.expires_at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_as("a credential with this token"))?;
        let credential = credential_from(&row)?;
        record(
            &mut tx,
            stamp,
            AuditEvent::CredentialIssued {
                credential: credential.id,
                account: credential.account,
                kind: credential.kind,
                expires_at: credential.expires_at,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(credential)
    }

    async fn credential(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        let row = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn credential_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<Credential>> {
        let row = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE token_hash = $1"
        ))
        .bind(hash.0.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn touch_credential(&self, id: CredentialId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE credentials SET last_used_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_credential(&self, stamp: Stamp, id: CredentialId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE credentials SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING account_id",
        )
        .bind(id.0)
        .bind(stamp.at.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let account = AccountId(row.try_get("account_id")?);
        record(
            &mut tx,
            stamp,
            AuditEvent::CredentialRevoked {
                credential: id,
                account,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn credentials_of(&self, account: AccountId) -> StoreResult<Vec<Credential>> {
        let rows = sqlx::query(&format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(credential_from).collect()
    }

    async fn sign_in_failures(
        &self,
        email: &str,
        window_start: Timestamp,
    ) -> StoreResult<Option<(i64, Timestamp)>> {
        let row = sqlx::query(
            "SELECT failures, first_failed_at FROM sign_in_failures \
             WHERE email = $1 AND first_failed_at > $2",
        )
        .bind(email)
        .bind(window_start.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.try_get("failures")?, ts(&row, "first_failed_at")?)))
            .transpose()
    }

    async fn record_sign_in_failure(
        &self,
        email: &str,
        at: Timestamp,
        window_start: Timestamp,
    ) -> StoreResult<()> {
        // Expired counts of every address go first, so the table holds one window's worth.
        sqlx::query("DELETE FROM sign_in_failures WHERE first_failed_at <= $1")
            .bind(window_start.0)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sign_in_failures (email, failures, first_failed_at) VALUES ($1, 1, $2) \
             ON CONFLICT (email) DO UPDATE SET \
             failures = CASE WHEN sign_in_failures.first_failed_at <= $3 THEN 1 \
                        ELSE sign_in_failures.failures + 1 END, \
             first_failed_at = CASE WHEN sign_in_failures.first_failed_at <= $3 THEN $2 \
                               ELSE sign_in_failures.first_failed_at END",
        )
        .bind(email)
        .bind(at.0)
        .bind(window_start.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_sign_in_failures(&self, email: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE email = $1")
            .bind(email)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
