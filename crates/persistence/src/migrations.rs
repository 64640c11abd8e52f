//! The schema's migrations, one embedded set per SQL dialect.

use diesel::backend::Backend as DieselBackend;
use diesel::migration::MigrationSource;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::connection::AnyConnection;
use crate::{Backend, Database};

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
        with_harness!(self, |harness, source| apply(harness, source))
    }

    /// Reverts the newest applied migration; returns its name, or `None` when none
    /// is applied. Blocking.
    ///
    /// # Errors
    /// [`MigrationError`] when reverting fails.
    pub fn revert_last_migration(&self) -> Result<Option<String>, MigrationError> {
        with_harness!(self, |harness, source| revert_last(harness, source))
    }

    /// Reverts every applied migration; returns their names, newest first. Blocking.
    ///
    /// # Errors
    /// [`MigrationError`] when one fails; the ones before it stay reverted.
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, MigrationError> {
        with_harness!(self, |harness, source| revert_all(harness, source))
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

/// The names of the migrations this build carries for `backend`, oldest first; no
/// database is opened (so listing them creates no SQLite file).
///
/// # Errors
/// [`MigrationError`] when the embedded set cannot be read (a build defect).
pub fn embedded_migrations(backend: Backend) -> Result<Vec<String>, MigrationError> {
    fn names<DB: DieselBackend>(source: &impl MigrationSource<DB>) -> Outcome<Vec<String>> {
        Ok(oldest_first(source)?
            .iter()
            .map(|m| m.name().to_string())
            .collect())
    }
    match backend {
        Backend::Postgres => names::<diesel::pg::Pg>(&POSTGRES),
        Backend::Sqlite => names::<diesel::sqlite::Sqlite>(&SQLITE),
    }
    .map_err(MigrationError)
}

type Outcome<T> = diesel::migration::Result<T>;

/// The migrations of `source`, oldest first.
fn oldest_first<DB: DieselBackend>(
    source: &impl MigrationSource<DB>,
) -> Outcome<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
    let mut known = source.migrations()?;
    known.sort_by_key(|migration| migration.name().version().as_owned());
    Ok(known)
}

fn apply<DB: DieselBackend, S: MigrationSource<DB>>(
    harness: &mut impl MigrationHarness<DB>,
    source: S,
) -> Outcome<Vec<String>> {
    let names = Names::read(&source)?;
    Ok(names.named(&harness.run_pending_migrations(source)?))
}

fn revert_last<DB: DieselBackend, S: MigrationSource<DB>>(
    harness: &mut impl MigrationHarness<DB>,
    source: S,
) -> Outcome<Option<String>> {
    if harness.applied_migrations()?.is_empty() {
        return Ok(None);
    }
    let names = Names::read(&source)?;
    Ok(names.named(&[harness.revert_last_migration(source)?]).pop())
}

fn revert_all<DB: DieselBackend, S: MigrationSource<DB>>(
    harness: &mut impl MigrationHarness<DB>,
    source: S,
) -> Outcome<Vec<String>> {
    let names = Names::read(&source)?;
    Ok(names.named(&harness.revert_all_migrations(source)?))
}

/// The full names of a source's migrations (`2026-11-25-000001_create_users_and_sessions`)
/// by version (`20261125000001`), read before the harness takes the source.
struct Names(Vec<(String, String)>);

impl Names {
    fn read<DB: DieselBackend>(source: &impl MigrationSource<DB>) -> Outcome<Self> {
        Ok(Self(
            source
                .migrations()?
                .iter()
                .map(|m| (m.name().version().to_string(), m.name().to_string()))
                .collect(),
        ))
    }

    fn named(&self, versions: &[diesel::migration::MigrationVersion<'_>]) -> Vec<String> {
        versions
            .iter()
            .map(|version| {
                let version = version.to_string();
                self.0
                    .iter()
                    .find(|(known, _)| *known == version)
                    .map_or(version.clone(), |(_, name)| name.clone())
            })
            .collect()
    }
}

/// Every migration of `source`, oldest first, marked applied or not on `harness`.
fn status<DB: DieselBackend>(
    harness: &mut impl MigrationHarness<DB>,
    source: &impl MigrationSource<DB>,
) -> Outcome<Vec<MigrationStatus>> {
    let applied = harness.applied_migrations()?;
    Ok(oldest_first(source)?
        .iter()
        .map(|migration| MigrationStatus {
            name: migration.name().to_string(),
            applied: applied.contains(&migration.name().version()),
        })
        .collect())
}
