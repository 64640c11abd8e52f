//! The domain's background ports on actix's runtime.

use std::time::Duration;

use chatbot_domain::ports::{Spawner, Task, Timer};

/// Runs replies' writers on the worker that took the request, and waits with its
/// timers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ActixRuntime;

impl Spawner for ActixRuntime {
    fn spawn(&self, task: Task) {
        // Detached: the writer owns its reply, not the request that started it.
        drop(actix_web::rt::spawn(task));
    }
}

impl Timer for ActixRuntime {
    fn sleep(&self, duration: Duration) -> Task {
        Box::pin(actix_web::rt::time::sleep(duration))
    }
}
