//! The use cases of the chatbot, generic over the [ports](crate::ports).

mod accounts;
mod chat;

pub use accounts::AccountService;
pub use chat::ChatService;
