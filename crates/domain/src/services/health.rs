use async_trait::async_trait;

use crate::Error;
use crate::ports::StoreProbe;
use crate::use_cases::Health;

/// Readiness over the storage's probe.
#[derive(Debug)]
pub struct HealthService<P> {
    store: P,
}

impl<P: StoreProbe> HealthService<P> {
    /// Readiness of `store`.
    pub fn new(store: P) -> Self {
        Self { store }
    }
}

#[async_trait]
impl<P: StoreProbe> Health for HealthService<P> {
    async fn ready(&self) -> Result<(), Error> {
        Ok(self.store.ping().await?)
    }
}
