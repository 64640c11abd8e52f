//! SQLite's writer: one thread of its own that runs the process's writes in turn.
//!
//! SQLite admits one writer at a time and makes the others retry after ever longer
//! sleeps (its busy timeout), which under load wastes both throughput and tail
//! latency. Here the writes of the process queue up instead, and a thread that keeps
//! one connection open runs them back to back. Other processes on the same file still
//! meet the busy timeout.
//!
//! Writes that queued up while the thread was busy run together in one transaction,
//! each in a savepoint of its own when it has a transaction, with one commit for all
//! of them: the commit, which writes the changed pages to the WAL, was a third of a
//! write's cost. A write's caller hears of it only after that commit. A write that
//! fails on its own account (a unique-key conflict, a constraint, a bug) fails alone:
//! SQLite undoes the failed statement, and the write's savepoint the rest of it. A
//! write refused by the database's surroundings (below), which may have undone the
//! whole transaction, rolls the batch back: the writes that ran before it in the
//! batch are told they failed (nothing of them is stored), and the ones after it run
//! as a batch of their own.
//!
//! A write that queued up alone runs in a transaction of the writer's too, so that
//! its caller always hears of a failed commit: in autocommit mode SQLite commits an
//! `INSERT … RETURNING` when the statement is reset, after it has handed over its
//! row, and reports a failed commit (a full disk, an I/O error) only from that reset,
//! which diesel does not check. Such a write was acknowledged and lost.
//!
//! A write refused by the database's surroundings (a read-only file, a full disk, an
//! I/O error, a lock held too long by another process) closes the thread's
//! connection, and the next write opens a new one. A connection keeps what it found
//! when it was opened: SQLite opens a file it may not write read-only, and such a
//! connection would refuse every write for the life of the process, even once the
//! file is writable again.

use std::time::Duration;

use chatbot_domain::StorageError;
use diesel::Connection;
use r2d2::ManageConnection;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{AnyConnection, Manager};
use crate::database::storage_error;

/// Writes waiting beyond this many wait for room in the queue, up to the timeout.
const QUEUE: usize = 256;
/// Most writes committed together.
const BATCH: usize = 64;

/// A queued write: runs on the writer's connection (or learns why there is none).
type Job = Box<dyn FnOnce(Result<&mut AnyConnection, StorageError>) -> Ran + Send>;

/// A write that has run, its caller not told yet.
struct Ran {
    /// It failed as [`StorageError::Unavailable`]: the database's surroundings (a full
    /// disk, a read-only file) refused it, which may have undone the transaction around
    /// it. Transient: the connection is replaced and later writes are tried again.
    unavailable: bool,
    /// Tells the caller its own outcome, or, given one, the error that undid it.
    tell: Box<dyn FnOnce(Option<StorageError>) + Send>,
}

/// The queue of writes to one SQLite database; the thread stops once every clone of
/// it is gone.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread, which connects through `manager` when the first write
    /// comes, and again after a connection breaks.
    pub(crate) fn start(manager: Manager) -> std::io::Result<Self> {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                let mut open: Option<AnyConnection> = None;
                while let Some(first) = queue.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if open.is_none() {
                        match manager.connect() {
                            Ok(connection) => open = Some(connection),
                            Err(error) => {
                                for job in batch {
                                    let unavailable = error.to_string().into();
                                    (job(Err(StorageError::Unavailable(unavailable))).tell)(None);
                                }
                                continue;
                            }
                        }
                    }
                    if let Some(connection) = open.as_mut() {
                        let refused = run_batch(connection, batch);
                        if refused || manager.has_broken(connection) {
                            open = None;
                        }
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the writer's connection once the writes queued before it are
    /// done, waiting at most `wait` for room in the queue. `work` may run inside a
    /// transaction with other writes; it must not leave one open.
    pub(crate) async fn run<T, F>(&self, work: F, wait: Duration) -> Result<T, StorageError>
    where
        F: FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let result = connection.and_then(|connection| work(connection).map_err(storage_error));
            Ran {
                unavailable: matches!(result, Err(StorageError::Unavailable(_))),
                tell: Box::new(move |undone| {
                    // The caller may have gone meanwhile; the write stands all the same.
                    let _ = done.send(match undone {
                        Some(error) => Err(error),
                        None => result,
                    });
                }),
            }
        });
        match tokio::time::timeout(wait, self.jobs.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(StorageError::Failed("the SQLite writer has stopped".into())),
            Err(elapsed) => return Err(StorageError::Unavailable(Box::new(elapsed))),
        }
        outcome
            .await
            .map_err(|_| StorageError::Failed("the SQLite writer dropped a write".into()))?
    }
}

/// Runs `batch` with one commit, and tells each write's caller once it is settled.
/// Returns whether the database refused a write or the commit (see the module's
/// docs), so that the connection is better replaced.
fn run_batch(connection: &mut AnyConnection, batch: Vec<Job>) -> bool {
    let mut refused = false;
    let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let committed = connection.transaction::<_, diesel::result::Error, _>(|connection| {
        for job in jobs.by_ref() {
            let outcome = job(Ok(&mut *connection));
            let unavailable = outcome.unavailable;
            ran.push(outcome);
            if unavailable {
                return Err(diesel::result::Error::RollbackTransaction);
            }
        }
        Ok(())
    });
    match committed {
        Ok(()) => ran
            .into_iter()
            .for_each(|write| settle(write, None, &mut refused)),
        Err(error) => {
            let failed = if ran.last().is_some_and(|last| last.unavailable) {
                ran.pop()
            } else {
                None
            };
            for write in ran {
                let undone = match &failed {
                    Some(_) => "another write of its batch failed, which undid it".to_owned(),
                    None => format!("its batch of writes could not be committed: {error}"),
                };
                settle(
                    write,
                    Some(StorageError::Unavailable(undone.into())),
                    &mut refused,
                );
            }
            let rest: Vec<Job> = jobs.collect();
            if let Some(failed) = failed {
                settle(failed, None, &mut refused);
                // The writes after the one that failed: a batch of their own.
                if !rest.is_empty() {
                    refused |= run_batch(connection, rest);
                }
            } else {
                // The commit failed, or the transaction could not even begin (then
                // none of the writes ran).
                refused = true;
                for job in rest {
                    let unavailable = format!("no transaction could be begun: {error}");
                    settle(
                        job(Err(StorageError::Unavailable(unavailable.into()))),
                        None,
                        &mut refused,
                    );
                }
            }
        }
    }
    refused
}

/// Tells `write`'s caller its outcome (or `undone`), noting in `refused` whether the
/// database refused it.
fn settle(write: Ran, undone: Option<StorageError>, refused: &mut bool) {
    *refused |= write.unavailable;
    (write.tell)(undone);
}

#[cfg(test)]
mod tests {
    use diesel::RunQueryDsl;

    use super::*;
    use crate::DatabaseUrl;

    fn execute(sql: &'static str) -> impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<usize> {
        move |connection| diesel::sql_query(sql).execute(connection)
    }

    /// Runs the writes in `sqls` as one batch (queued while the writer is held up) and
    /// returns their outcomes and then the values stored in `t`.
    async fn one_batch(sqls: &[&'static str]) -> (Vec<Result<usize, StorageError>>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let writer =
            Writer::start(Manager::new(DatabaseUrl::Sqlite(dir.path().join("w.db")))).unwrap();
        let wait = Duration::from_secs(5);
        // `refusing` fails every insert the way a failing disk does.
        for setup in [
            "CREATE TABLE t (v TEXT PRIMARY KEY)",
            "CREATE TABLE refusing (v TEXT)",
            "CREATE TRIGGER refuse BEFORE INSERT ON refusing \
             BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END",
        ] {
            writer.run(execute(setup), wait).await.unwrap();
        }
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (holding, held_up) = oneshot::channel::<()>();
        let held = tokio::spawn({
            let writer = writer.clone();
            async move {
                let hold = move |_: &mut AnyConnection| {
                    holding.send(()).unwrap();
                    Ok(gate.recv().is_ok())
                };
                writer.run(hold, wait).await
            }
        });
        // Queue the batch only once the writer is held up, so that it all queues, and
        // one write at a time, so that it queues in order.
        held_up.await.unwrap();
        let mut writes = Vec::new();
        for &sql in sqls {
            let mut write = Box::pin(writer.run(execute(sql), wait));
            // One poll queues the write, as the queue has room; the outcome comes later.
            assert!(
                tokio::time::timeout(Duration::ZERO, &mut write)
                    .await
                    .is_err()
            );
            writes.push(write);
        }
        release.send(()).unwrap();
        assert!(held.await.unwrap().unwrap());
        let mut outcomes = Vec::new();
        for write in writes {
            outcomes.push(write.await);
        }
        let stored = writer
            .run(
                |connection| {
                    diesel::sql_query("SELECT v AS n FROM t ORDER BY v").load::<Value>(connection)
                },
                wait,
            )
            .await
            .unwrap();
        (outcomes, stored.into_iter().map(|v| v.n).collect())
    }

    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::Text)]
        n: String,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_write_whose_commit_fails_is_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let writer =
            Writer::start(Manager::new(DatabaseUrl::Sqlite(dir.path().join("w.db")))).unwrap();
        let wait = Duration::from_secs(5);
        writer
            .run(execute("CREATE TABLE p (id INTEGER PRIMARY KEY)"), wait)
            .await
            .unwrap();
        // SQLite checks a deferred foreign key when the transaction commits.
        writer
            .run(
                execute(
                    "CREATE TABLE t (v TEXT PRIMARY KEY, \
                     p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
                ),
                wait,
            )
            .await
            .unwrap();
        // Alone in the queue, and with RETURNING: on its own, SQLite would hand over
        // the row, then fail to commit where diesel does not look.
        let inserted = writer
            .run(
                |connection| {
                    diesel::sql_query("INSERT INTO t (v, p) VALUES ('orphan', 99) RETURNING v AS n")
                        .get_result::<Value>(connection)
                },
                wait,
            )
            .await;
        assert!(
            inserted.is_err(),
            "told it was stored: {:?}",
            inserted.map(|v| v.n)
        );
        let stored = writer
            .run(
                |connection| diesel::sql_query("SELECT v AS n FROM t").load::<Value>(connection),
                wait,
            )
            .await
            .unwrap();
        assert!(stored.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_that_refuses_writes_is_replaced_for_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let writer =
            Writer::start(Manager::new(DatabaseUrl::Sqlite(dir.path().join("w.db")))).unwrap();
        let wait = Duration::from_secs(5);
        writer
            .run(execute("CREATE TABLE t (v TEXT PRIMARY KEY)"), wait)
            .await
            .unwrap();
        // The writer's connection stops taking writes, as one that SQLite opened on a
        // file it could not write does ("attempt to write a readonly database").
        writer
            .run(execute("PRAGMA query_only = ON"), wait)
            .await
            .unwrap();
        let refused = writer
            .run(execute("INSERT INTO t VALUES ('refused')"), wait)
            .await;
        assert!(
            matches!(refused, Err(StorageError::Unavailable(_))),
            "{refused:?}"
        );
        // The next write gets a new connection, which takes it.
        let taken = writer
            .run(execute("INSERT INTO t VALUES ('taken')"), wait)
            .await;
        assert!(matches!(taken, Ok(1)), "{taken:?}");
        let stored = writer
            .run(
                |connection| diesel::sql_query("SELECT v AS n FROM t").load::<Value>(connection),
                wait,
            )
            .await
            .unwrap();
        let stored: Vec<String> = stored.into_iter().map(|v| v.n).collect();
        assert_eq!(stored, ["taken"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflict_fails_only_its_own_write() {
        let (outcomes, stored) = one_batch(&[
            "INSERT INTO t VALUES ('a')",
            "INSERT INTO t VALUES ('a')",
            "INSERT INTO t VALUES ('b')",
        ])
        .await;
        assert!(matches!(outcomes[0], Ok(1)), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StorageError::Conflict)),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], Ok(1)), "{outcomes:?}");
        assert_eq!(stored, ["a", "b"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_on_its_own_account_fails_alone() {
        let (outcomes, stored) = one_batch(&[
            "INSERT INTO t VALUES ('before')",
            "INSERT INTO missing VALUES ('x')",
            "INSERT INTO t VALUES ('after')",
        ])
        .await;
        assert!(matches!(outcomes[0], Ok(1)), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StorageError::Failed(_))),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], Ok(1)), "{outcomes:?}");
        assert_eq!(stored, ["after", "before"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_write_undoes_its_batch_and_says_so_to_every_write_in_it() {
        let (outcomes, stored) = one_batch(&[
            "INSERT INTO t VALUES ('undone')",
            "INSERT INTO refusing VALUES ('x')",
            "INSERT INTO t VALUES ('after')",
        ])
        .await;
        assert!(
            matches!(outcomes[0], Err(StorageError::Unavailable(_))),
            "{outcomes:?}"
        );
        assert!(
            matches!(outcomes[1], Err(StorageError::Unavailable(_))),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], Ok(1)), "{outcomes:?}");
        assert_eq!(
            stored,
            ["after"],
            "nothing a caller was told failed is stored"
        );
    }
}
