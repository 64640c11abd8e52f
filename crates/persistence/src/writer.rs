//! SQLite's writer: one thread of its own that runs the process's writes in turn.
//!
//! SQLite admits one writer at a time and makes the others retry after ever longer
//! sleeps (its busy timeout), which under load wastes both throughput and tail
//! latency. Here the writes of the process queue up instead, and a thread that keeps
//! one connection open runs them back to back, so the lock passes from one write to
//! the next without a gap. Other processes on the same file still meet the busy
//! timeout.

use std::time::Duration;

use chatbot_domain::StorageError;
use r2d2::ManageConnection;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{AnyConnection, Manager};
use crate::database::storage_error;

/// Writes waiting beyond this many wait for room in the queue, up to the timeout.
const QUEUE: usize = 256;

type Job = Box<dyn FnOnce(Result<&mut AnyConnection, StorageError>) + Send>;

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
                while let Some(job) = queue.blocking_recv() {
                    if open.is_none() {
                        match manager.connect() {
                            Ok(connection) => open = Some(connection),
                            Err(error) => {
                                job(Err(StorageError::Unavailable(Box::new(error))));
                                continue;
                            }
                        }
                    }
                    if let Some(connection) = open.as_mut() {
                        job(Ok(connection));
                        if manager.has_broken(connection) {
                            open = None;
                        }
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the writer's connection once the writes queued before it are
    /// done, waiting at most `wait` for room in the queue.
    pub(crate) async fn run<T, F>(&self, work: F, wait: Duration) -> Result<T, StorageError>
    where
        F: FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let result = connection.and_then(|connection| work(connection).map_err(storage_error));
            // The caller may have gone meanwhile; the write stands all the same.
            let _ = done.send(result);
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
