use async_trait::async_trait;
use chatbot_domain::ports::UserRepository;
use chatbot_domain::{Credentials, NewUser, StorageError, User, Username};
use diesel::prelude::*;

use super::columns_of;
use crate::Database;
use crate::rows::{NewUserRow, UserRow, to_column};
use crate::schema::{lower, users};

#[async_trait]
impl UserRepository for Database {
    async fn insert_user(&self, user: NewUser) -> Result<User, StorageError> {
        let row = NewUserRow {
            username: user.username.as_str().to_owned(),
            password_hash: user.password_hash.as_str().to_owned(),
            created_at: to_column(user.created_at),
        };
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
                    .filter(lower(users::username).eq(normalized))
                    .select((columns_of!(UserRow), users::password_hash))
                    .first::<(UserRow, String)>(connection)
                    .optional()
            })
            .await?;
        found
            .map(|(user, hash)| user.into_credentials(hash))
            .transpose()
    }
}
