//! The use cases of the chatbot: implementations of the [use case
//! traits](crate::use_cases), generic over the [ports](crate::ports).

mod accounts;
mod chat;
mod health;
mod replies;
mod sessions;

pub use accounts::AccountService;
pub use chat::{Background, ChatService, ReplySettings};
pub use health::HealthService;
pub use replies::StreamSettings;
pub use sessions::SessionService;
