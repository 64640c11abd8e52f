use async_trait::async_trait;
use chatbot_domain::ports::UserRepository;
use chatbot_domain::{
    Credentials, Email, NewUser, PasswordHash, Profile, ProfileChange, StorageError, User, UserId,
    Username,
};
use diesel::prelude::*;

use super::columns_of;
use crate::Database;
use crate::rows::{CredentialsRow, NewUserRow, ProfileChangeRow, ProfileRow, UserRow};
use crate::schema::users;

#[async_trait]
impl UserRepository for Database {
    async fn insert_user(&self, user: NewUser) -> Result<User, StorageError> {
        let row = NewUserRow::from(user);
        self.write(move |connection| {
            diesel::insert_into(users::table)
                .values(&row)
                .returning(columns_of!(UserRow))
                .get_result::<UserRow>(connection)
        })
        .await?
        .into_user()
    }

    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<Credentials>, StorageError> {
        let normalized = username.normalized();
        let found = self
            .run(move |connection| {
                users::table
                    .filter(users::username_normalized.eq(normalized))
                    .select(columns_of!(CredentialsRow))
                    .first::<CredentialsRow>(connection)
                    .optional()
            })
            .await?;
        found.map(CredentialsRow::into_credentials).transpose()
    }

    async fn find_credentials_of(&self, user: UserId) -> Result<Option<Credentials>, StorageError> {
        let found = self
            .run(move |connection| {
                users::table
                    .find(user.get())
                    .select(columns_of!(CredentialsRow))
                    .first::<CredentialsRow>(connection)
                    .optional()
            })
            .await?;
        found.map(CredentialsRow::into_credentials).transpose()
    }

    async fn find_profile(&self, user: UserId) -> Result<Option<Profile>, StorageError> {
        let found = self
            .run(move |connection| {
                users::table
                    .find(user.get())
                    .select(columns_of!(ProfileRow))
                    .first::<ProfileRow>(connection)
                    .optional()
            })
            .await?;
        found.map(ProfileRow::into_profile).transpose()
    }

    /// Served by the unique index on the normalized address.
    async fn find_profile_by_email(&self, email: &Email) -> Result<Option<Profile>, StorageError> {
        let normalized = email.normalized();
        let found = self
            .run(move |connection| {
                users::table
                    .filter(users::email_normalized.eq(normalized))
                    .select(columns_of!(ProfileRow))
                    .first::<ProfileRow>(connection)
                    .optional()
            })
            .await?;
        found.map(ProfileRow::into_profile).transpose()
    }

    /// One statement: an address another user has fails it whole, by the unique
    /// index, and nothing of the change is stored.
    async fn update_profile(
        &self,
        user: UserId,
        change: ProfileChange,
    ) -> Result<Option<Profile>, StorageError> {
        let Some(row) = ProfileChangeRow::of(change) else {
            return self.find_profile(user).await;
        };
        let updated = self
            .write(move |connection| {
                diesel::update(users::table.find(user.get()))
                    .set(&row)
                    .returning(columns_of!(ProfileRow))
                    .get_result::<ProfileRow>(connection)
                    .optional()
            })
            .await?;
        updated.map(ProfileRow::into_profile).transpose()
    }

    async fn set_password(&self, user: UserId, hash: PasswordHash) -> Result<bool, StorageError> {
        let hash = hash.as_str().to_owned();
        let updated = self
            .write(move |connection| {
                diesel::update(users::table.find(user.get()))
                    .set(users::password_hash.eq(hash))
                    .execute(connection)
            })
            .await?;
        Ok(updated > 0)
    }

    /// The address is compared in the same statement as it is marked, so an address
    /// changed meanwhile is never marked verified by a token mailed to the old one.
    async fn mark_email_verified(&self, user: UserId, email: &Email) -> Result<bool, StorageError> {
        let normalized = email.normalized();
        let marked = self
            .write(move |connection| {
                diesel::update(
                    users::table
                        .find(user.get())
                        .filter(users::email_normalized.eq(normalized)),
                )
                .set(users::email_verified.eq(true))
                .execute(connection)
            })
            .await?;
        Ok(marked > 0)
    }

    /// Everything else of theirs goes with the row, by the foreign keys' cascades.
    async fn delete_user(&self, user: UserId) -> Result<bool, StorageError> {
        let deleted = self
            .write(move |connection| {
                diesel::delete(users::table.find(user.get())).execute(connection)
            })
            .await?;
        Ok(deleted > 0)
    }
}
