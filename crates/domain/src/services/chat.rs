use async_trait::async_trait;

use crate::ports::{Bot, Clock, ConversationRepository, MessageRepository};
use crate::use_cases::Chat;
use crate::{
    BotError, Conversation, ConversationCursor, ConversationId, ConversationName,
    ConversationWithMessages, Error, Exchange, Message, MessageCursor, MessageText,
    NewConversation, NewMessage, Page, PageRequest, Revision, Sender, UserId, Window,
};

/// Conversations and messages, each use case on behalf of one user who only ever sees
/// and changes their own conversations: another user's conversation is
/// [not found](Error::ConversationNotFound).
#[derive(Debug)]
pub struct ChatService<R, M, B, C> {
    conversations: R,
    messages: M,
    bot: B,
    clock: C,
}

impl<R, M, B, C> ChatService<R, M, B, C>
where
    R: ConversationRepository,
    M: MessageRepository,
    B: Bot,
    C: Clock,
{
    /// A service over these stores, this bot and this clock.
    pub fn new(conversations: R, messages: M, bot: B, clock: C) -> Self {
        Self {
            conversations,
            messages,
            bot,
            clock,
        }
    }

    async fn append(
        &self,
        owner: UserId,
        id: ConversationId,
        sender: Sender,
        text: String,
    ) -> Result<Message, Error> {
        let message = NewMessage {
            sender,
            text,
            created_at: self.clock.now(),
        };
        self.messages
            .append_message(owner, id, message)
            .await?
            .ok_or(Error::ConversationNotFound)
    }
}

#[async_trait]
impl<R, M, B, C> Chat for ChatService<R, M, B, C>
where
    R: ConversationRepository,
    M: MessageRepository,
    B: Bot,
    C: Clock,
{
    async fn conversations(&self, owner: UserId) -> Result<Vec<ConversationWithMessages>, Error> {
        Ok(self
            .conversations
            .list_conversations_with_messages(owner, Window::ALL)
            .await?)
    }

    async fn revision(&self, owner: UserId) -> Result<Revision, Error> {
        Ok(self.conversations.revision(owner).await?)
    }

    async fn conversation_page(
        &self,
        owner: UserId,
        page: PageRequest<ConversationCursor>,
    ) -> Result<Page<Conversation, ConversationCursor>, Error> {
        let probe = Window::probing(page);
        let conversations = self.conversations.list_conversations(owner, probe).await?;
        Ok(Page::from_probe(
            conversations,
            page.size,
            ConversationCursor::after,
        ))
    }

    async fn conversation_page_with_messages(
        &self,
        owner: UserId,
        page: PageRequest<ConversationCursor>,
    ) -> Result<Page<ConversationWithMessages, ConversationCursor>, Error> {
        let probe = Window::probing(page);
        let listed = self
            .conversations
            .list_conversations_with_messages(owner, probe)
            .await?;
        Ok(Page::from_probe(listed, page.size, |listed| {
            ConversationCursor::after(&listed.conversation)
        }))
    }

    async fn message_page(
        &self,
        owner: UserId,
        id: ConversationId,
        page: PageRequest<MessageCursor>,
    ) -> Result<Page<Message, MessageCursor>, Error> {
        let mut messages = self
            .messages
            .list_messages(owner, id, Window::probing(page))
            .await?
            .ok_or(Error::ConversationNotFound)?;
        // Newest first while probing, so the extra message is the oldest one.
        messages.reverse();
        let mut page = Page::from_probe(messages, page.size, |message| MessageCursor(message.id));
        page.items.reverse();
        Ok(page)
    }

    async fn create_conversation(
        &self,
        owner: UserId,
        name: ConversationName,
    ) -> Result<Conversation, Error> {
        let conversation = NewConversation {
            owner,
            name,
            created_at: self.clock.now(),
        };
        Ok(self.conversations.insert_conversation(conversation).await?)
    }

    async fn rename_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        name: ConversationName,
    ) -> Result<Conversation, Error> {
        self.conversations
            .rename_conversation(owner, id, name, self.clock.now())
            .await?
            .ok_or(Error::ConversationNotFound)
    }

    async fn delete_conversation(&self, owner: UserId, id: ConversationId) -> Result<(), Error> {
        if self.conversations.delete_conversation(owner, id).await? {
            Ok(())
        } else {
            Err(Error::ConversationNotFound)
        }
    }

    async fn send_message(
        &self,
        owner: UserId,
        id: ConversationId,
        text: MessageText,
    ) -> Result<Exchange, Error> {
        let user_message = self
            .append(owner, id, Sender::User, text.into_string())
            .await?;
        let reply = self
            .bot
            .reply(&user_message)
            .await
            .and_then(storable)
            .map_err(Error::BotUnavailable)?;
        let bot_message = self.append(owner, id, Sender::Bot, reply).await?;
        Ok(Exchange {
            user_message,
            bot_message,
        })
    }
}

/// The bot's `reply` as it can be stored: without NUL characters, which PostgreSQL
/// cannot hold; an empty reply is a failure of the bot.
fn storable(reply: String) -> Result<String, BotError> {
    let reply = if reply.contains('\0') {
        reply.replace('\0', "")
    } else {
        reply
    };
    if reply.trim().is_empty() {
        return Err(BotError::new("the bot replied with nothing"));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use mockall::Sequence;
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{MockBot, MockClock, MockConversationRepository, MockMessageRepository};
    use crate::{MessageId, PageSize, StorageError, Timestamp};

    const OWNER: UserId = UserId::new(1);
    const CONVERSATION: ConversationId = ConversationId::new(10);

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_795_586_834_123).unwrap()
    }

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        clock
    }

    fn conversation(name: &str) -> Conversation {
        Conversation {
            id: CONVERSATION,
            owner: OWNER,
            name: ConversationName::parse(name).unwrap(),
            created_at: now(),
            updated_at: now(),
        }
    }

    fn stored(id: i64, message: &NewMessage) -> Message {
        Message {
            id: MessageId::new(id),
            conversation_id: CONVERSATION,
            sender: message.sender,
            text: message.text.clone(),
            created_at: message.created_at,
        }
    }

    type Service =
        ChatService<MockConversationRepository, MockMessageRepository, MockBot, MockClock>;

    fn service(
        conversations: MockConversationRepository,
        messages: MockMessageRepository,
        bot: MockBot,
    ) -> Service {
        ChatService::new(conversations, messages, bot, clock())
    }

    #[tokio::test]
    async fn lists_the_owners_conversations() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_list_conversations_with_messages()
            .with(eq(OWNER), eq(Window::ALL))
            .returning(|_, _| {
                Ok(vec![ConversationWithMessages {
                    conversation: conversation("Hello"),
                    messages: vec![],
                }])
            });
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        let listed = service.conversations(OWNER).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].conversation.name.as_str(), "Hello");
    }

    fn numbered(id: i64) -> Conversation {
        Conversation {
            id: ConversationId::new(id),
            ..conversation("Numbered")
        }
    }

    fn two_at_a_time<C>(before: Option<C>) -> PageRequest<C> {
        PageRequest {
            size: PageSize::parse("2").unwrap(),
            before,
        }
    }

    #[tokio::test]
    async fn a_conversation_page_reads_one_more_to_know_whether_another_follows() {
        let cursor = ConversationCursor::after(&numbered(9));
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_list_conversations()
            .with(
                eq(OWNER),
                eq(Window {
                    before: Some(cursor),
                    limit: Some(3),
                }),
            )
            .returning(|_, _| Ok(vec![numbered(8), numbered(7), numbered(6)]));
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        let page = service
            .conversation_page(OWNER, two_at_a_time(Some(cursor)))
            .await
            .unwrap();
        let ids: Vec<i64> = page.items.iter().map(|c| c.id.get()).collect();
        assert_eq!(ids, [8, 7]);
        assert_eq!(page.next, Some(ConversationCursor::after(&numbered(7))));
    }

    #[tokio::test]
    async fn the_last_conversation_page_has_no_next() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_list_conversations_with_messages()
            .with(
                eq(OWNER),
                eq(Window {
                    before: None,
                    limit: Some(3),
                }),
            )
            .returning(|_, _| {
                Ok(vec![ConversationWithMessages {
                    conversation: numbered(1),
                    messages: vec![],
                }])
            });
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        let page = service
            .conversation_page_with_messages(OWNER, two_at_a_time(None))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next, None);
    }

    #[tokio::test]
    async fn a_message_page_keeps_the_latest_messages_oldest_first() {
        let before = MessageCursor(MessageId::new(40));
        let mut messages = MockMessageRepository::new();
        messages
            .expect_list_messages()
            .with(
                eq(OWNER),
                eq(CONVERSATION),
                eq(Window {
                    before: Some(before),
                    limit: Some(3),
                }),
            )
            .returning(|_, _, _| {
                let at = |id| {
                    let new = NewMessage {
                        sender: Sender::User,
                        text: format!("message {id}"),
                        created_at: now(),
                    };
                    stored(id, &new)
                };
                Ok(Some(vec![at(31), at(32), at(33)]))
            });
        let service = service(MockConversationRepository::new(), messages, MockBot::new());

        let page = service
            .message_page(OWNER, CONVERSATION, two_at_a_time(Some(before)))
            .await
            .unwrap();
        let ids: Vec<i64> = page.items.iter().map(|m| m.id.get()).collect();
        assert_eq!(ids, [32, 33]);
        assert_eq!(page.next, Some(MessageCursor(MessageId::new(32))));
    }

    #[tokio::test]
    async fn messages_of_a_foreign_conversation_are_not_found() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_list_messages()
            .returning(|_, _, _| Ok(None));
        let service = service(MockConversationRepository::new(), messages, MockBot::new());

        let refused = service
            .message_page(OWNER, CONVERSATION, PageRequest::default())
            .await;
        assert!(matches!(refused, Err(Error::ConversationNotFound)));
    }

    #[tokio::test]
    async fn creates_a_conversation_for_the_owner_at_the_current_time() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_insert_conversation()
            .with(eq(NewConversation {
                owner: OWNER,
                name: ConversationName::default(),
                created_at: now(),
            }))
            .returning(|_| Ok(conversation("New conversation")));
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        let created = service
            .create_conversation(OWNER, ConversationName::default())
            .await
            .unwrap();
        assert_eq!(created.name.as_str(), "New conversation");
    }

    #[tokio::test]
    async fn renames_only_the_owners_conversation() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_rename_conversation()
            .with(
                eq(OWNER),
                eq(CONVERSATION),
                eq(ConversationName::parse("Renamed").unwrap()),
                eq(now()),
            )
            .returning(|_, _, name, _| Ok(Some(conversation(name.as_str()))));
        conversations
            .expect_rename_conversation()
            .returning(|_, _, _, _| Ok(None));
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        let renamed = service
            .rename_conversation(
                OWNER,
                CONVERSATION,
                ConversationName::parse("Renamed").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(renamed.name.as_str(), "Renamed");

        let foreign = service
            .rename_conversation(
                UserId::new(2),
                CONVERSATION,
                ConversationName::parse("Mine now").unwrap(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(foreign, Error::ConversationNotFound),
            "{foreign:?}"
        );
    }

    #[tokio::test]
    async fn deleting_a_missing_or_foreign_conversation_is_not_found() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_delete_conversation()
            .with(eq(OWNER), eq(CONVERSATION))
            .returning(|_, _| Ok(true));
        conversations
            .expect_delete_conversation()
            .returning(|_, _| Ok(false));
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        service
            .delete_conversation(OWNER, CONVERSATION)
            .await
            .unwrap();
        let error = service
            .delete_conversation(UserId::new(2), CONVERSATION)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
    }

    #[tokio::test]
    async fn send_message_stores_the_users_message_then_asks_the_bot_then_stores_its_reply() {
        let mut sequence = Sequence::new();
        let mut messages = MockMessageRepository::new();
        let mut bot = MockBot::new();
        messages
            .expect_append_message()
            .withf(|owner, id, m| {
                *owner == OWNER && *id == CONVERSATION && m.sender == Sender::User && m.text == "hi"
            })
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, m| Ok(Some(stored(100, &m))));
        bot.expect_reply()
            .withf(|m| m.id == MessageId::new(100) && m.text == "hi")
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Ok("hello to you".to_owned()));
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::Bot && m.text == "hello to you")
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, m| Ok(Some(stored(101, &m))));
        let service = service(MockConversationRepository::new(), messages, bot);

        let exchange = service
            .send_message(OWNER, CONVERSATION, MessageText::parse(" hi ").unwrap())
            .await
            .unwrap();
        assert_eq!(exchange.user_message.sender, Sender::User);
        assert_eq!(exchange.user_message.text, "hi");
        assert_eq!(exchange.bot_message.sender, Sender::Bot);
        assert_eq!(exchange.bot_message.id, MessageId::new(101));
    }

    #[tokio::test]
    async fn send_message_to_a_missing_or_foreign_conversation_never_asks_the_bot() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .times(1)
            .returning(|_, _, _| Ok(None));
        let mut bot = MockBot::new();
        bot.expect_reply().never();
        let service = service(MockConversationRepository::new(), messages, bot);

        let error = service
            .send_message(OWNER, CONVERSATION, MessageText::parse("hi").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
    }

    #[tokio::test]
    async fn a_failing_bot_keeps_the_users_message_and_stores_no_reply() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::User)
            .times(1)
            .returning(|_, _, m| Ok(Some(stored(100, &m))));
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::Bot)
            .never();
        let mut bot = MockBot::new();
        bot.expect_reply()
            .returning(|_| Err(BotError::new("model server timed out")));
        let service = service(MockConversationRepository::new(), messages, bot);

        let error = service
            .send_message(OWNER, CONVERSATION, MessageText::parse("hi").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::BotUnavailable(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the bot is unavailable, try again shortly"
        );
    }

    #[tokio::test]
    async fn storage_outage_is_reported_as_unavailable() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_list_conversations_with_messages()
            .returning(|_, _| Err(StorageError::Unavailable("pool timed out".into())));
        let service = service(conversations, MockMessageRepository::new(), MockBot::new());

        let error = service.conversations(OWNER).await.unwrap_err();
        assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");
    }

    /// A message store that stores whatever it is given, numbering from 100.
    fn storing_messages() -> MockMessageRepository {
        let mut messages = MockMessageRepository::new();
        let mut next = 100;
        messages.expect_append_message().returning(move |_, _, m| {
            next += 1;
            Ok(Some(stored(next, &m)))
        });
        messages
    }

    #[tokio::test]
    async fn an_empty_bot_reply_is_a_bot_failure() {
        let mut bot = MockBot::new();
        bot.expect_reply().returning(|_| Ok(" \n ".to_owned()));
        let service = service(MockConversationRepository::new(), storing_messages(), bot);

        let error = service
            .send_message(OWNER, CONVERSATION, MessageText::parse("hi").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::BotUnavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn nul_characters_are_removed_from_bot_replies() {
        let mut bot = MockBot::new();
        bot.expect_reply().returning(|_| Ok("a\0b".to_owned()));
        let service = service(MockConversationRepository::new(), storing_messages(), bot);

        let exchange = service
            .send_message(OWNER, CONVERSATION, MessageText::parse("hi").unwrap())
            .await
            .unwrap();
        assert_eq!(exchange.bot_message.text, "ab");
    }

    #[tokio::test]
    async fn a_conversation_deleted_while_the_bot_thinks_is_not_found() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::User)
            .returning(|_, _, m| Ok(Some(stored(100, &m))));
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::Bot)
            .returning(|_, _, _| Ok(None));
        let mut bot = MockBot::new();
        bot.expect_reply().returning(|_| Ok("too late".to_owned()));
        let service = service(MockConversationRepository::new(), messages, bot);

        let error = service
            .send_message(OWNER, CONVERSATION, MessageText::parse("hi").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
    }
}
