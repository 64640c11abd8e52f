use async_trait::async_trait;
use chatbot_domain::ports::TokenRepository;
use chatbot_domain::{
    AccountToken, NewAccountToken, SecretDigest, StorageError, Timestamp, TokenPurpose, UserId,
};
use diesel::prelude::*;

use super::{columns_of, count_of, lock_user};
use crate::Database;
use crate::rows::{NewTokenRow, TokenRow, to_column};
use crate::schema::account_tokens;

#[async_trait]
impl TokenRepository for Database {
    /// The older token of the same purpose is deleted before the new one is stored,
    /// in one transaction; a token of the same digest fails it whole as a conflict.
    async fn issue_token(&self, token: NewAccountToken) -> Result<(), StorageError> {
        let row = NewTokenRow::from(token);
        self.write(move |connection| {
            connection.transaction(|connection| {
                lock_user(connection, row.user_id)?;
                diesel::delete(
                    account_tokens::table
                        .filter(account_tokens::user_id.eq(row.user_id))
                        .filter(account_tokens::purpose.eq(row.purpose)),
                )
                .execute(connection)?;
                diesel::insert_into(account_tokens::table)
                    .values(&row)
                    .execute(connection)
            })
        })
        .await?;
        Ok(())
    }

    /// One statement that deletes the row and hands it back: of two takes at the same
    /// time, the second finds it gone.
    async fn take_token(
        &self,
        digest: &SecretDigest,
        purpose: TokenPurpose,
    ) -> Result<Option<AccountToken>, StorageError> {
        let digest = digest.as_str().to_owned();
        let taken = self
            .write(move |connection| {
                diesel::delete(
                    account_tokens::table
                        .find(digest)
                        .filter(account_tokens::purpose.eq(purpose.as_str())),
                )
                .returning(columns_of!(TokenRow))
                .get_result::<TokenRow>(connection)
                .optional()
            })
            .await?;
        taken.map(TokenRow::into_token).transpose()
    }

    async fn revoke_tokens(&self, user: UserId, purpose: TokenPurpose) -> Result<(), StorageError> {
        self.write(move |connection| {
            diesel::delete(
                account_tokens::table
                    .filter(account_tokens::user_id.eq(user.get()))
                    .filter(account_tokens::purpose.eq(purpose.as_str())),
            )
            .execute(connection)
        })
        .await?;
        Ok(())
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64, StorageError> {
        let purged = self
            .write(move |connection| {
                diesel::delete(
                    account_tokens::table.filter(account_tokens::expires_at.le(to_column(now))),
                )
                .execute(connection)
            })
            .await?;
        Ok(count_of(purged))
    }
}
