//! The schema's migrations, one embedded set per SQL dialect.

use diesel::backend::Backend;
use diesel::migration::MigrationSource;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Database;
use crate::connection::AnyConnection;

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// A migration could not be listed, applied or reverted.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(#[source] chatbot_domain::BoxError);

/// One migration and whether this database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The migration's name, e.g. `2026-11-25-000001_create_users_and_sessions`.
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// Runs `$body` with `$harness` bound to the concrete connection and `$source` to the
/// migrations of its dialect (the two harnesses are different types).
macro_rules! with_harness {
    ($database:expr, |$harness:ident, $source:ident| $body:expr) => {{
        let mut pooled = $database
            .connection()
            .map_err(|e| MigrationError(Box::new(e)))?;
        match &mut *pooled {
            AnyConnection::Postgresql($harness) => {
                let $source = POSTGRES;
                $body
            }
            AnyConnection::Sqlite($harness) => {
                let $source = SQLITE;
                $body
            }
        }
        .map_err(MigrationError)
    }};
}

impl Database {
    /// Applies every pending migration; returns the names applied, oldest first.
    ///
    /// Blocking: call it at start-up or from a blocking thread.
    ///
    /// # Errors
    /// [`MigrationError`] when one fails; the migrations before it stay applied.
    pub fn run_pending_migrations(&self) -> Result<Vec<String>, MigrationError> {
        with_harness!(self, |harness, source| harness
            .run_pending_migrations(source)
            .map(|versions| versions.iter().map(ToString::to_string).collect()))
    }

    /// Reverts the newest applied migration; returns its name, or `None` when none
    /// is applied. Blocking.
    ///
    /// # Errors
    /// [`MigrationError`] when reverting fails.
    pub fn revert_last_migration(&self) -> Result<Option<String>, MigrationError> {
        with_harness!(self, |harness, source| {
            match harness.applied_migrations() {
                Ok(applied) if applied.is_empty() => Ok(None),
                Ok(_) => harness
                    .revert_last_migration(source)
                    .map(|version| Some(version.to_string())),
                Err(e) => Err(e),
            }
        })
    }

    /// Reverts every applied migration; returns their names, newest first. Blocking.
    ///
    /// # Errors
    /// [`MigrationError`] when one fails; the ones before it stay reverted.
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, MigrationError> {
        with_harness!(self, |harness, source| harness
            .revert_all_migrations(source)
            .map(|versions| versions.iter().map(ToString::to_string).collect()))
    }

    /// Every migration this build knows, oldest first, and whether it is applied.
    /// Blocking.
    ///
    /// # Errors
    /// [`MigrationError`] when the applied ones cannot be read.
    pub fn migration_status(&self) -> Result<Vec<MigrationStatus>, MigrationError> {
        with_harness!(self, |harness, source| status(harness, &source))
    }
}

/// Every migration of `source`, oldest first, marked applied or not on `harness`.
fn status<DB: Backend>(
    harness: &mut impl MigrationHarness<DB>,
    source: &impl MigrationSource<DB>,
) -> diesel::migration::Result<Vec<MigrationStatus>> {
    let applied = harness.applied_migrations()?;
    let mut known = source.migrations()?;
    known.sort_by_key(|migration| migration.name().version().as_owned());
    Ok(known
        .iter()
        .map(|migration| MigrationStatus {
            name: migration.name().to_string(),
            applied: applied.contains(&migration.name().version()),
        })
        .collect())
}
