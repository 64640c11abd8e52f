//! The use cases of the chatbot: implementations of the [use case
//! traits](crate::use_cases), generic over the [ports](crate::ports).

mod accounts;
mod chat;
mod health;
mod realtime;
mod replies;
mod sessions;

pub use accounts::{AccountPorts, AccountService, FailedLoginLimit};
pub use chat::{Background, ChatService, ReplySettings};
pub use health::HealthService;
pub use realtime::{Delivery, EventHub, HubSettings, Subscription};
pub use replies::StreamSettings;
pub use sessions::SessionService;

/// Where a service passes its events on: nowhere until given a publisher (a service
/// used without real time).
#[derive(Clone, Default)]
pub(crate) struct Events(Option<std::sync::Arc<dyn crate::ports::EventPublisher>>);

impl Events {
    pub(crate) fn to(publisher: std::sync::Arc<dyn crate::ports::EventPublisher>) -> Self {
        Self(Some(publisher))
    }

    pub(crate) fn publish(&self, owner: crate::UserId, change: crate::Change) {
        if let Some(publisher) = &self.0 {
            publisher.publish(crate::Event::new(owner, change));
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Events").field(&self.0.is_some()).finish()
    }
}
