use async_trait::async_trait;

use crate::ports::{Bot, Clock, ConversationRepository, MessageRepository};
use crate::reply::next_piece;
use crate::use_cases::Chat;
use crate::{
    AppendedMessage, BotError, Conversation, ConversationCursor, ConversationId, ConversationName,
    ConversationWithMessages, Error, Exchange, Message, MessageCursor, MessageStatus, MessageText,
    NewConversation, NewMessage, Page, PageRequest, ReplyContext, Revision, Sender, UserId, Window,
};

/// How the bot is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySettings {
    /// The instructions before every conversation.
    pub system_prompt: String,
    /// How many of the conversation's most recent messages the bot sees besides the
    /// new one.
    pub history_messages: usize,
}

impl ReplySettings {
    /// The system prompt unless configured otherwise.
    pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant. Answer clearly and \
        concisely, in the language the user writes in.";
    /// The history unless configured otherwise.
    pub const DEFAULT_HISTORY_MESSAGES: usize = 20;
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            system_prompt: Self::DEFAULT_SYSTEM_PROMPT.to_owned(),
            history_messages: Self::DEFAULT_HISTORY_MESSAGES,
        }
    }
}

/// Conversations and messages, each use case on behalf of one user who only ever sees
/// and changes their own conversations: another user's conversation is
/// [not found](Error::ConversationNotFound).
#[derive(Debug)]
pub struct ChatService<R, M, B, C> {
    conversations: R,
    messages: M,
    bot: B,
    clock: C,
    replies: ReplySettings,
}

impl<R, M, B, C> ChatService<R, M, B, C>
where
    R: ConversationRepository,
    M: MessageRepository,
    B: Bot,
    C: Clock,
{
    /// A service over these stores, this bot and this clock, asking the bot with the
    /// default [`ReplySettings`].
    pub fn new(conversations: R, messages: M, bot: B, clock: C) -> Self {
        Self {
            conversations,
            messages,
            bot,
            clock,
            replies: ReplySettings::default(),
        }
    }

    /// The same service, asking the bot as `replies` says.
    #[must_use]
    pub fn with_replies(mut self, replies: ReplySettings) -> Self {
        self.replies = replies;
        self
    }

    /// What the bot sees to reply to `message`: the system prompt and the
    /// conversation's latest messages before it, oldest first (none for a bot that
    /// does not look at them).
    async fn context(&self, owner: UserId, message: Message) -> Result<ReplyContext, Error> {
        let history = if self.replies.history_messages == 0 || !self.bot.sees_history() {
            Vec::new()
        } else {
            let window = Window {
                before: Some(MessageCursor(message.id)),
                limit: Some(self.replies.history_messages),
            };
            self.messages
                .list_messages(owner, message.conversation_id, window)
                .await?
                .ok_or(Error::ConversationNotFound)?
        };
        Ok(ReplyContext {
            system_prompt: self.replies.system_prompt.clone(),
            history,
            message,
        })
    }

    /// The bot's whole reply to `context`; when it breaks off after some text, that
    /// text is stored as a failed reply before the error is returned.
    async fn reply(&self, owner: UserId, context: ReplyContext) -> Result<Message, Error> {
        let id = context.message.conversation_id;
        let mut stream = self
            .bot
            .reply(context)
            .await
            .map_err(Error::BotUnavailable)?;
        let mut text = String::new();
        while let Some(piece) = next_piece(&mut stream).await {
            match piece {
                Ok(piece) => text.push_str(&piece),
                Err(error) => {
                    // Stop the bot before storing what came: nothing more is wanted.
                    drop(stream);
                    let partial = storable(text);
                    if !partial.trim().is_empty() {
                        self.append(owner, id, Sender::Bot, partial, MessageStatus::Failed)
                            .await?;
                    }
                    return Err(Error::BotUnavailable(error));
                }
            }
        }
        let text = storable(text);
        if text.trim().is_empty() {
            return Err(Error::BotUnavailable(BotError::Empty));
        }
        Ok(self
            .append(owner, id, Sender::Bot, text, MessageStatus::Complete)
            .await?
            .message)
    }

    /// After a reply in a conversation that still has the default name (its first
    /// reply, or a later one if titling failed before): names it from that exchange.
    /// A title that cannot be made leaves the default name; that is only logged.
    async fn give_title(&self, owner: UserId, user_message: &Message, reply: &Message) {
        let id = user_message.conversation_id;
        let title = match self.bot.title(&user_message.text, &reply.text).await {
            Ok(title) => title,
            Err(error) => {
                tracing::warn!(%error, "could not make a title; the conversation keeps its name");
                return;
            }
        };
        let Ok(title) = ConversationName::parse(&ConversationName::clip(&title)) else {
            tracing::warn!("the bot's title is not a valid name; the conversation keeps its name");
            return;
        };
        if let Err(error) = self
            .conversations
            .title_conversation(owner, id, title)
            .await
        {
            tracing::warn!(%error, "could not store a title; the conversation keeps its name");
        }
    }

    async fn append(
        &self,
        owner: UserId,
        id: ConversationId,
        sender: Sender,
        text: String,
        status: MessageStatus,
    ) -> Result<AppendedMessage, Error> {
        let message = NewMessage {
            sender,
            text,
            status,
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
        let AppendedMessage {
            message: user_message,
            conversation_name,
        } = self
            .append(
                owner,
                id,
                Sender::User,
                text.into_string(),
                MessageStatus::Complete,
            )
            .await?;
        let context = self.context(owner, user_message.clone()).await?;
        let bot_message = self.reply(owner, context).await?;
        if conversation_name == ConversationName::default() {
            self.give_title(owner, &user_message, &bot_message).await;
        }
        Ok(Exchange {
            user_message,
            bot_message,
        })
    }
}

/// The bot's `reply` as it can be stored: without NUL characters, which PostgreSQL
/// cannot hold.
fn storable(reply: String) -> String {
    if reply.contains('\0') {
        reply.replace('\0', "")
    } else {
        reply
    }
}

#[cfg(test)]
mod tests {
    use mockall::Sequence;
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{MockBot, MockClock, MockConversationRepository, MockMessageRepository};
    use crate::{MessageId, PageSize, ReplyStream, StorageError, Timestamp};

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

    /// `message` stored as `id` in a conversation the user named.
    fn appended(id: i64, message: &NewMessage) -> AppendedMessage {
        AppendedMessage {
            message: stored(id, message),
            conversation_name: ConversationName::parse("chat").unwrap(),
        }
    }

    /// `message` stored as `id` in a conversation that still has the default name.
    fn appended_untitled(id: i64, message: &NewMessage) -> AppendedMessage {
        AppendedMessage {
            conversation_name: ConversationName::default(),
            ..appended(id, message)
        }
    }

    /// A bot that looks at the history; expectations to be added.
    fn bot() -> MockBot {
        let mut bot = MockBot::new();
        bot.expect_sees_history().return_const(true);
        bot
    }

    fn stored(id: i64, message: &NewMessage) -> Message {
        Message {
            id: MessageId::new(id),
            conversation_id: CONVERSATION,
            sender: message.sender,
            text: message.text.clone(),
            status: message.status,
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
        let service = service(conversations, MockMessageRepository::new(), bot());

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
        let service = service(conversations, MockMessageRepository::new(), bot());

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
        let service = service(conversations, MockMessageRepository::new(), bot());

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
                        status: MessageStatus::Complete,
                        created_at: now(),
                    };
                    stored(id, &new)
                };
                Ok(Some(vec![at(31), at(32), at(33)]))
            });
        let service = service(MockConversationRepository::new(), messages, bot());

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
        let service = service(MockConversationRepository::new(), messages, bot());

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
        let service = service(conversations, MockMessageRepository::new(), bot());

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
        let service = service(conversations, MockMessageRepository::new(), bot());

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
        let service = service(conversations, MockMessageRepository::new(), bot());

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

    /// A reply arriving as `pieces`.
    fn streaming(pieces: Vec<Result<&'static str, BotError>>) -> ReplyStream {
        Box::pin(futures_util::stream::iter(
            pieces.into_iter().map(|piece| piece.map(str::to_owned)),
        ))
    }

    /// A message store that stores whatever it is given, numbering from 101, in a
    /// conversation still named by default, and finds `history` before the user's
    /// message.
    fn storing_messages_with(history: Vec<Message>) -> MockMessageRepository {
        let mut messages = MockMessageRepository::new();
        let mut next = 100;
        messages.expect_append_message().returning(move |_, _, m| {
            next += 1;
            Ok(Some(appended_untitled(next, &m)))
        });
        messages
            .expect_list_messages()
            .returning(move |_, _, _| Ok(Some(history.clone())));
        messages
    }

    fn storing_messages() -> MockMessageRepository {
        storing_messages_with(Vec::new())
    }

    /// A conversation store that takes any title.
    fn titled() -> MockConversationRepository {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_title_conversation()
            .returning(|_, _, _| Ok(true));
        conversations
    }

    fn said(id: i64, sender: Sender, text: &str) -> Message {
        let new = NewMessage {
            sender,
            text: text.to_owned(),
            status: MessageStatus::Complete,
            created_at: now(),
        };
        stored(id, &new)
    }

    #[tokio::test]
    async fn send_message_stores_the_users_message_then_asks_the_bot_with_the_context_then_stores_its_reply()
     {
        let mut sequence = Sequence::new();
        let mut messages = MockMessageRepository::new();
        let mut bot = bot();
        messages
            .expect_append_message()
            .withf(|owner, id, m| {
                *owner == OWNER
                    && *id == CONVERSATION
                    && m.sender == Sender::User
                    && m.text == "hi"
                    && m.status == MessageStatus::Complete
            })
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, m| Ok(Some(appended(100, &m))));
        let earlier = vec![
            said(98, Sender::User, "before"),
            said(99, Sender::Bot, "reply"),
        ];
        let history = earlier.clone();
        messages
            .expect_list_messages()
            .with(
                eq(OWNER),
                eq(CONVERSATION),
                eq(Window {
                    before: Some(MessageCursor(MessageId::new(100))),
                    limit: Some(2),
                }),
            )
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_, _, _| Ok(Some(history.clone())));
        bot.expect_reply()
            .withf(move |context| {
                context.system_prompt == "Be brief."
                    && context.history == earlier
                    && context.message.id == MessageId::new(100)
                    && context.message.text == "hi"
            })
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Ok(streaming(vec![Ok("hello "), Ok("to "), Ok("you")])));
        messages
            .expect_append_message()
            .withf(|_, _, m| {
                m.sender == Sender::Bot
                    && m.text == "hello to you"
                    && m.status == MessageStatus::Complete
            })
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_, _, m| Ok(Some(appended(101, &m))));
        bot.expect_title().never();
        let service =
            service(MockConversationRepository::new(), messages, bot).with_replies(ReplySettings {
                system_prompt: "Be brief.".to_owned(),
                history_messages: 2,
            });

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
    async fn without_history_the_store_is_not_asked_for_it() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .returning(|_, _, m| Ok(Some(appended(100, &m))));
        messages.expect_list_messages().never();
        let mut bot = bot();
        bot.expect_reply()
            .withf(|context| context.history.is_empty())
            .returning(|_| Ok(streaming(vec![Ok("ok")])));
        bot.expect_title()
            .returning(|_, _| Ok("A title".to_owned()));
        let service = service(titled(), messages, bot).with_replies(ReplySettings {
            history_messages: 0,
            ..ReplySettings::default()
        });
        say_hi(&service).await.unwrap();
    }

    #[tokio::test]
    async fn a_bot_that_does_not_look_at_the_history_is_given_none_and_costs_no_read() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .returning(|_, _, m| Ok(Some(appended(100, &m))));
        messages.expect_list_messages().never();
        let mut bot = MockBot::new();
        bot.expect_sees_history().return_const(false);
        bot.expect_reply()
            .withf(|context| context.history.is_empty())
            .returning(|_| Ok(streaming(vec![Ok("ok")])));
        say_hi(&service(MockConversationRepository::new(), messages, bot))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_first_reply_titles_the_conversation_if_its_name_is_the_default() {
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok("Fjords, mostly.")])));
        bot.expect_title()
            .withf(|message, reply| message == "Where to hike?" && reply == "Fjords, mostly.")
            .times(1)
            .returning(|_, _| Ok("  Hiking in Norway ".to_owned()));
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_title_conversation()
            .withf(|owner, id, title| {
                *owner == OWNER && *id == CONVERSATION && title.as_str() == "Hiking in Norway"
            })
            .times(1)
            .returning(|_, _, _| Ok(false));
        let service = service(conversations, storing_messages(), bot);
        service
            .send_message(
                OWNER,
                CONVERSATION,
                MessageText::parse("Where to hike?").unwrap(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_conversation_the_user_named_is_never_titled_and_the_bot_not_asked() {
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok("ok")])));
        bot.expect_title().never();
        let mut conversations = MockConversationRepository::new();
        conversations.expect_title_conversation().never();
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .returning(|_, _, m| Ok(Some(appended(100, &m))));
        messages
            .expect_list_messages()
            .returning(|_, _, _| Ok(Some(Vec::new())));
        say_hi(&service(conversations, messages, bot))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_title_that_fails_keeps_the_name_and_the_reply() {
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok("ok")])));
        bot.expect_title().returning(|_, _| Err(BotError::Timeout));
        let mut conversations = MockConversationRepository::new();
        conversations.expect_title_conversation().never();
        let service = service(conversations, storing_messages(), bot);
        let exchange = say_hi(&service).await.unwrap();
        assert_eq!(exchange.bot_message.text, "ok");
    }

    #[tokio::test]
    async fn a_long_title_is_cut_to_a_name_at_a_word() {
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok("ok")])));
        bot.expect_title()
            .returning(|_, _| Ok(format!("{} end", "word ".repeat(30))));
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_title_conversation()
            .withf(|_, _, title| {
                title.as_str().chars().count() <= ConversationName::MAX_CHARS
                    && title.as_str().ends_with("word")
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let service = service(conversations, storing_messages(), bot);
        say_hi(&service).await.unwrap();
    }

    #[tokio::test]
    async fn send_message_to_a_missing_or_foreign_conversation_never_asks_the_bot() {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .times(1)
            .returning(|_, _, _| Ok(None));
        let mut bot = bot();
        bot.expect_reply().never();
        let service = service(MockConversationRepository::new(), messages, bot);

        let error = say_hi(&service).await.unwrap_err();
        assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
    }

    /// Sends "hi" to the conversation.
    async fn say_hi(service: &Service) -> Result<Exchange, Error> {
        service
            .send_message(OWNER, CONVERSATION, MessageText::parse("hi").unwrap())
            .await
    }

    /// A message store that stores the user's message as 100, in a conversation the
    /// user named, finds no history before it, and is told nothing about the bot's.
    fn user_message_stored() -> MockMessageRepository {
        let mut messages = MockMessageRepository::new();
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::User)
            .times(1)
            .returning(|_, _, m| Ok(Some(appended(100, &m))));
        messages
            .expect_list_messages()
            .returning(|_, _, _| Ok(Some(Vec::new())));
        messages
    }

    /// What sending gives with `bot`, asserting that the user's message is stored and
    /// no reply.
    async fn sent_without_a_reply(bot: MockBot) -> Error {
        let mut messages = user_message_stored();
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::Bot)
            .never();
        say_hi(&service(MockConversationRepository::new(), messages, bot))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_bot_failing_before_any_text_keeps_the_users_message_and_stores_no_reply() {
        let mut refused = bot();
        refused
            .expect_reply()
            .returning(|_| Err(BotError::Status { status: 500 }));
        let mut silent = bot();
        silent
            .expect_reply()
            .returning(|_| Ok(streaming(vec![Err(BotError::Timeout)])));
        for bot in [refused, silent] {
            let error = sent_without_a_reply(bot).await;
            assert!(matches!(error, Error::BotUnavailable(_)), "{error:?}");
            assert_eq!(
                error.to_string(),
                "the bot is unavailable, try again shortly"
            );
        }
    }

    #[tokio::test]
    async fn a_bot_breaking_off_after_some_text_stores_that_text_as_failed() {
        let mut messages = user_message_stored();
        messages
            .expect_append_message()
            .withf(|_, _, m| {
                m.sender == Sender::Bot && m.text == "Half a " && m.status == MessageStatus::Failed
            })
            .times(1)
            .returning(|_, _, m| Ok(Some(appended(101, &m))));
        let mut bot = bot();
        bot.expect_reply().returning(|_| {
            Ok(streaming(vec![
                Ok("Half "),
                Ok("a "),
                Err(BotError::Broken("connection reset".into())),
                Ok("never read"),
            ]))
        });
        bot.expect_title().never();
        let service = service(MockConversationRepository::new(), messages, bot);

        let error = say_hi(&service).await.unwrap_err();
        assert!(
            matches!(error, Error::BotUnavailable(BotError::Broken(_))),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn storage_outage_is_reported_as_unavailable() {
        let mut conversations = MockConversationRepository::new();
        conversations
            .expect_list_conversations_with_messages()
            .returning(|_, _| Err(StorageError::Unavailable("pool timed out".into())));
        let service = service(conversations, MockMessageRepository::new(), bot());

        let error = service.conversations(OWNER).await.unwrap_err();
        assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn an_empty_bot_reply_is_a_bot_failure_and_stores_nothing() {
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok(" \n "), Ok("")])));
        let error = sent_without_a_reply(bot).await;
        assert!(
            matches!(error, Error::BotUnavailable(BotError::Empty)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn nul_characters_are_removed_from_bot_replies() {
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok("a\0"), Ok("b")])));
        bot.expect_title().returning(|_, _| Ok("t".to_owned()));
        let service = service(titled(), storing_messages(), bot);

        let exchange = say_hi(&service).await.unwrap();
        assert_eq!(exchange.bot_message.text, "ab");
    }

    #[tokio::test]
    async fn a_conversation_deleted_while_the_bot_thinks_is_not_found() {
        let mut messages = user_message_stored();
        messages
            .expect_append_message()
            .withf(|_, _, m| m.sender == Sender::Bot)
            .returning(|_, _, _| Ok(None));
        let mut bot = bot();
        bot.expect_reply()
            .returning(|_| Ok(streaming(vec![Ok("too late")])));
        let service = service(MockConversationRepository::new(), messages, bot);

        let error = say_hi(&service).await.unwrap_err();
        assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
    }
}
