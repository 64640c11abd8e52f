//! The chat use cases against mocks of the ports. Replies are written by tasks on the
//! test's (single-threaded) runtime, and every wait of the service goes through a
//! [`ManualClock`] the test moves: nothing sleeps, nothing depends on real time.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

use futures_core::Stream;
use futures_util::{FutureExt, StreamExt};
use mockall::Sequence;
use mockall::predicate::eq;

use super::*;
use crate::ports::{
    EventPublisher, MockBot, MockConversationRepository, MockMessageRepository, Task,
};
use crate::{Event, ManualClock, PageSize, ReplySnapshot, Timestamp};

const OWNER: UserId = UserId::new(1);
const CONVERSATION: ConversationId = ConversationId::new(10);
/// The id the user's message is stored with.
const USER_MESSAGE: MessageId = MessageId::new(100);
/// The id the bot's reply is created with.
const REPLY: MessageId = MessageId::new(101);

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_795_586_834_123).unwrap()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// --- The test's runtime: background tasks, time, and a bot the test writes. ---

/// Runs the service's background tasks on the test's runtime. A task that panics (a
/// mock got a call it did not expect) fails the test instead of leaving it waiting
/// for a reply that never ends.
#[derive(Clone, Default)]
struct Tasks(Arc<Mutex<Panicked>>);

#[derive(Default)]
struct Panicked {
    payload: Option<Box<dyn std::any::Any + Send>>,
    waiting: Vec<Waker>,
}

impl Spawner for Tasks {
    fn spawn(&self, mut task: Task) {
        let tasks = self.clone();
        tokio::spawn(std::future::poll_fn(
            move |cx| match std::panic::catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(cx))) {
                Ok(polled) => polled,
                Err(payload) => {
                    let waiting = {
                        let mut panicked = lock(&tasks.0);
                        panicked.payload.get_or_insert(payload);
                        std::mem::take(&mut panicked.waiting)
                    };
                    waiting.into_iter().for_each(Waker::wake);
                    Poll::Ready(())
                }
            },
        ));
    }
}

impl Tasks {
    /// Fails the test with the panic of a background task, if one panicked.
    fn check(&self) {
        let payload = lock(&self.0).payload.take();
        if let Some(payload) = payload {
            std::panic::resume_unwind(payload);
        }
    }

    /// `future`'s output, unless a background task panics first.
    async fn watch<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let output = std::future::poll_fn(|cx| {
            self.check();
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            lock(&self.0).waiting.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        self.check();
        output
    }
}

type Service = ChatService<MockConversationRepository, MockMessageRepository, MockBot, ManualClock>;

/// The service under test, with the clock it reads and waits on, and its background
/// tasks.
struct Harness {
    service: Service,
    clock: ManualClock,
    tasks: Tasks,
    _checked: Checked,
}

/// Fails the test, once it is over, if a background task panicked unwatched.
struct Checked(Tasks);

impl Drop for Checked {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.0.check();
        }
    }
}

impl Deref for Harness {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

fn service(
    conversations: MockConversationRepository,
    messages: MockMessageRepository,
    bot: MockBot,
) -> Harness {
    let clock = ManualClock::starting_at(now());
    let tasks = Tasks::default();
    let background = Background {
        spawner: Arc::new(tasks.clone()),
        timer: Arc::new(clock.clone()),
    };
    Harness {
        service: ChatService::new(conversations, messages, bot, clock.clone(), background),
        clock,
        _checked: Checked(tasks.clone()),
        tasks,
    }
}

impl Harness {
    fn with_events(self, events: Arc<dyn EventPublisher>) -> Self {
        Self {
            service: self.service.with_events(events),
            ..self
        }
    }

    fn with_max_conversations(self, most: u32) -> Self {
        Self {
            service: self.service.with_max_conversations(most),
            ..self
        }
    }

    fn with_replies(self, replies: ReplySettings) -> Self {
        Self {
            service: self.service.with_replies(replies),
            ..self
        }
    }

    /// `future`'s output, failing if a background task panics meanwhile.
    async fn run<F: Future>(&self, future: F) -> F::Output {
        self.tasks.watch(future).await
    }

    /// Lets the background tasks run until every one waits (for the bot, the clock
    /// or a reader).
    async fn settle(&self) {
        // On the current-thread runtime, a yield comes back once every task that can
        // run has run; a few more cover tasks woken by those.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        self.tasks.check();
    }

    /// Moves the clock, then lets the background tasks run.
    async fn advance(&self, duration: Duration) {
        self.clock.advance(duration);
        self.settle().await;
    }

    /// Sends "hi" to the conversation.
    async fn say_hi(&self) -> Result<Exchange, Error> {
        self.run(self.send_message(OWNER, CONVERSATION, hi())).await
    }

    /// Starts the reply to "hi", then lets it run.
    async fn start_hi(&self) -> StartedReply {
        let started = self
            .run(self.start_reply(OWNER, CONVERSATION, hi()))
            .await
            .unwrap();
        self.settle().await;
        started
    }

    /// The events of `feed` to its end.
    async fn events(&self, feed: ReplyFeed) -> Vec<ReplyEvent> {
        self.run(feed.collect()).await
    }
}

fn hi() -> MessageText {
    MessageText::parse("hi").unwrap()
}

/// The next event of `feed`, if it has one now.
fn next_now(feed: &mut ReplyFeed) -> Option<Option<ReplyEvent>> {
    feed.next().now_or_never()
}

/// A bot's reply the test writes piece by piece. It knows whether the service has
/// dropped it (which stops a real bot).
#[derive(Clone, Default)]
struct Pipe(Arc<Mutex<Piping>>);

#[derive(Default)]
struct Piping {
    pieces: VecDeque<Result<String, BotError>>,
    ended: bool,
    dropped: bool,
    reader: Option<Waker>,
}

impl Pipe {
    fn put(&self, piece: Result<String, BotError>, end: bool) {
        let reader = {
            let mut piping = lock(&self.0);
            piping.pieces.push_back(piece);
            piping.ended |= end;
            piping.reader.take()
        };
        reader.into_iter().for_each(Waker::wake);
    }

    fn write(&self, piece: &str) {
        self.put(Ok(piece.to_owned()), false);
    }

    /// The reply is whole after `last`.
    fn end_with(&self, last: &str) {
        self.put(Ok(last.to_owned()), true);
    }

    fn dropped(&self) -> bool {
        lock(&self.0).dropped
    }

    fn stream(&self) -> ReplyStream {
        Box::pin(PipeEnd(self.clone()))
    }
}

struct PipeEnd(Pipe);

impl Stream for PipeEnd {
    type Item = Result<String, BotError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut piping = lock(&self.0.0);
        if let Some(piece) = piping.pieces.pop_front() {
            Poll::Ready(Some(piece))
        } else if piping.ended {
            Poll::Ready(None)
        } else {
            piping.reader = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        lock(&self.0.0).dropped = true;
    }
}

/// A bot that looks at the history and replies once through `pipe`; never asked for
/// a title.
fn piped_bot(pipe: &Pipe) -> MockBot {
    let mut bot = bot();
    let pipe = pipe.clone();
    bot.expect_reply()
        .times(1)
        .returning(move |_| Ok(pipe.stream()));
    bot.expect_title().never();
    bot
}

/// A reply arriving as `pieces`, at once.
fn streaming(pieces: Vec<Result<&'static str, BotError>>) -> ReplyStream {
    Box::pin(futures_util::stream::iter(
        pieces.into_iter().map(|piece| piece.map(str::to_owned)),
    ))
}

/// A bot that looks at the history; expectations to be added.
fn bot() -> MockBot {
    let mut bot = MockBot::new();
    bot.expect_sees_history().return_const(true);
    bot
}

/// A short description of `event`, to compare whole feeds at a glance.
fn show(event: &ReplyEvent) -> String {
    match event {
        ReplyEvent::Started(reply) => format!("started {} {:?}", reply.status, reply.text),
        ReplyEvent::Delta(delta) => {
            assert_eq!(delta.message_id, REPLY);
            format!("delta {} {:?}", delta.seq, delta.text)
        }
        ReplyEvent::Done(reply) => format!("done {} {:?}", reply.status, reply.text),
        ReplyEvent::Failed {
            failure,
            message: Some(reply),
        } => format!("failed {} {:?}: {failure}", reply.status, reply.text),
        ReplyEvent::Failed {
            failure,
            message: None,
        } => format!("failed: {failure}"),
    }
}

fn shown(events: &[ReplyEvent]) -> Vec<String> {
    events.iter().map(show).collect()
}

// --- Stored things. ---

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
        status: message.status,
        created_at: message.created_at,
    }
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

/// The bot's reply as `begin_exchange` creates it.
fn reply_as_created() -> Message {
    Message {
        id: REPLY,
        conversation_id: CONVERSATION,
        sender: Sender::Bot,
        text: String::new(),
        status: MessageStatus::Streaming,
        created_at: now(),
    }
}

/// The bot's reply as stored with `text` and `status`.
fn reply_stored(text: &str, status: MessageStatus) -> Message {
    Message {
        text: text.to_owned(),
        status,
        ..reply_as_created()
    }
}

fn named() -> ConversationName {
    ConversationName::parse("chat").unwrap()
}

/// What `begin_exchange` stores for `message` in a conversation named `name`.
fn begun(message: &NewMessage, name: ConversationName) -> BegunExchange {
    BegunExchange {
        user_message: stored(USER_MESSAGE.get(), message),
        reply: reply_as_created(),
        conversation_name: name,
    }
}

/// A message store where one exchange begins in a conversation named `name`, with
/// no history before it; expectations about the reply to be added.
fn beginning(name: ConversationName) -> MockMessageRepository {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .times(1)
        .returning(move |_, _, m| Ok(Some(begun(&m, name.clone()))));
    messages
        .expect_list_messages()
        .returning(|_, _, _| Ok(Some(Vec::new())));
    messages
}

/// Stores the end of any reply as it is given.
fn stores_ends(messages: &mut MockMessageRepository) {
    messages
        .expect_finish_reply()
        .returning(|id, text, status| {
            Ok(Some(Message {
                id,
                text,
                status,
                ..reply_as_created()
            }))
        });
}

/// A message store where one exchange begins in a conversation that still has the
/// default name, and that stores the end of the reply as it is given.
fn storing_messages() -> MockMessageRepository {
    let mut messages = beginning(ConversationName::default());
    stores_ends(&mut messages);
    messages
}

/// A conversation store that takes any title.
fn titled() -> MockConversationRepository {
    let mut conversations = MockConversationRepository::new();
    conversations
        .expect_title_conversation()
        .returning(|_, _, title| Ok(Some(conversation(title.as_str()))));
    conversations
}

// --- Conversations and pages. ---

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
            let at = |id| said(id, Sender::User, &format!("message {id}"));
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
        .with(
            eq(NewConversation {
                owner: OWNER,
                name: ConversationName::default(),
                created_at: now(),
            }),
            eq(Service::DEFAULT_MAX_CONVERSATIONS),
        )
        .returning(|_, _| Ok(Some(conversation("New conversation"))));
    let service = service(conversations, MockMessageRepository::new(), bot());

    let created = service
        .create_conversation(OWNER, ConversationName::default())
        .await
        .unwrap();
    assert_eq!(created.name.as_str(), "New conversation");
}

#[tokio::test]
async fn a_user_at_the_most_conversations_gets_no_new_one_and_no_event() {
    let mut conversations = MockConversationRepository::new();
    conversations
        .expect_insert_conversation()
        .with(mockall::predicate::always(), eq(3))
        .returning(|_, _| Ok(None));
    let events = Arc::new(Recorder::default());
    let service = service(conversations, MockMessageRepository::new(), bot())
        .with_max_conversations(3)
        .with_events(events.clone());

    let refused = service
        .create_conversation(OWNER, ConversationName::default())
        .await;
    assert!(
        matches!(refused, Err(Error::TooManyConversations { most: 3 })),
        "{refused:?}"
    );
    assert!(events.shown().is_empty());
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

// --- Sending a message and waiting for the reply. ---

#[tokio::test]
async fn send_message_stores_the_users_message_then_asks_the_bot_with_the_context_then_stores_its_reply()
 {
    let mut sequence = Sequence::new();
    let mut messages = MockMessageRepository::new();
    let mut bot = bot();
    messages
        .expect_begin_exchange()
        .withf(|owner, id, m| {
            *owner == OWNER
                && *id == CONVERSATION
                && m.sender == Sender::User
                && m.text == "hi"
                && m.status == MessageStatus::Complete
                && m.created_at == now()
        })
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, m| Ok(Some(begun(&m, named()))));
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
                before: Some(MessageCursor(USER_MESSAGE)),
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
                && context.message.id == USER_MESSAGE
                && context.message.text == "hi"
        })
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_| Ok(streaming(vec![Ok("hello "), Ok("to "), Ok("you")])));
    messages
        .expect_finish_reply()
        .with(
            eq(REPLY),
            eq("hello to you".to_owned()),
            eq(MessageStatus::Complete),
        )
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, text, status| Ok(Some(reply_stored(&text, status))));
    // A fast reply needs no checkpoint: it is stored once, at its end.
    messages.expect_checkpoint_reply().never();
    messages.expect_discard_reply().never();
    bot.expect_title().never();
    let service =
        service(MockConversationRepository::new(), messages, bot).with_replies(ReplySettings {
            system_prompt: "Be brief.".to_owned(),
            history_messages: 2,
            ..ReplySettings::default()
        });

    let exchange = service
        .run(service.send_message(OWNER, CONVERSATION, MessageText::parse(" hi ").unwrap()))
        .await
        .unwrap();
    assert_eq!(exchange.user_message.id, USER_MESSAGE);
    assert_eq!(exchange.user_message.sender, Sender::User);
    assert_eq!(exchange.user_message.text, "hi");
    assert_eq!(
        exchange.bot_message,
        reply_stored("hello to you", MessageStatus::Complete)
    );
}

#[tokio::test]
async fn without_history_the_store_is_not_asked_for_it() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .returning(|_, _, m| Ok(Some(begun(&m, named()))));
    messages.expect_list_messages().never();
    stores_ends(&mut messages);
    let mut bot = bot();
    bot.expect_reply()
        .withf(|context| context.history.is_empty())
        .times(1)
        .returning(|_| Ok(streaming(vec![Ok("ok")])));
    let service =
        service(MockConversationRepository::new(), messages, bot).with_replies(ReplySettings {
            history_messages: 0,
            ..ReplySettings::default()
        });
    service.say_hi().await.unwrap();
}

#[tokio::test]
async fn a_bot_that_does_not_look_at_the_history_is_given_none_and_costs_no_read() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .returning(|_, _, m| Ok(Some(begun(&m, named()))));
    messages.expect_list_messages().never();
    stores_ends(&mut messages);
    let mut bot = MockBot::new();
    bot.expect_sees_history().return_const(false);
    bot.expect_reply()
        .withf(|context| context.history.is_empty())
        .times(1)
        .returning(|_| Ok(streaming(vec![Ok("ok")])));
    service(MockConversationRepository::new(), messages, bot)
        .say_hi()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_first_reply_titles_the_conversation_if_its_name_is_the_default() {
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("Fjords, "), Ok("mostly.")])));
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
        .returning(|_, _, _| Ok(None));
    let service = service(conversations, storing_messages(), bot);
    let exchange = service
        .run(service.send_message(
            OWNER,
            CONVERSATION,
            MessageText::parse("Where to hike?").unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(exchange.bot_message.text, "Fjords, mostly.");
}

#[tokio::test]
async fn a_conversation_the_user_named_is_never_titled_and_the_bot_not_asked() {
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("ok")])));
    bot.expect_title().never();
    let mut conversations = MockConversationRepository::new();
    conversations.expect_title_conversation().never();
    let mut messages = beginning(named());
    stores_ends(&mut messages);
    service(conversations, messages, bot)
        .say_hi()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_title_that_fails_keeps_the_name_and_the_reply() {
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("ok")])));
    bot.expect_title()
        .times(1)
        .returning(|_, _| Err(BotError::Timeout));
    let mut conversations = MockConversationRepository::new();
    conversations.expect_title_conversation().never();
    let service = service(conversations, storing_messages(), bot);
    let exchange = service.say_hi().await.unwrap();
    assert_eq!(exchange.bot_message.text, "ok");
    assert_eq!(exchange.bot_message.status, MessageStatus::Complete);
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
        .returning(|_, _, title| Ok(Some(conversation(title.as_str()))));
    let service = service(conversations, storing_messages(), bot);
    service.say_hi().await.unwrap();
}

#[tokio::test]
async fn send_message_to_a_missing_or_foreign_conversation_never_asks_the_bot() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .times(1)
        .returning(|_, _, _| Ok(None));
    messages.expect_discard_reply().never();
    let mut bot = bot();
    bot.expect_reply().never();
    let service = service(MockConversationRepository::new(), messages, bot);

    let error = service.say_hi().await.unwrap_err();
    assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
}

#[tokio::test]
async fn a_reply_in_progress_refuses_the_message_and_never_asks_the_bot() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .times(2)
        .returning(|_, _, _| Err(StorageError::Conflict));
    messages.expect_list_messages().never();
    messages.expect_discard_reply().never();
    let mut bot = bot();
    bot.expect_reply().never();
    let service = service(MockConversationRepository::new(), messages, bot);

    let error = service.say_hi().await.unwrap_err();
    assert!(matches!(error, Error::ReplyInProgress), "{error:?}");
    let error = service
        .run(service.start_reply(OWNER, CONVERSATION, hi()))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ReplyInProgress), "{error:?}");
}

#[tokio::test]
async fn a_store_that_cannot_begin_the_exchange_is_unavailable() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .returning(|_, _, _| Err(StorageError::Unavailable("pool timed out".into())));
    let mut bot = bot();
    bot.expect_reply().never();
    let service = service(MockConversationRepository::new(), messages, bot);

    let error = service.say_hi().await.unwrap_err();
    assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");
}

/// What sending gives with `bot`, asserting that the user's message is stored and
/// the empty reply deleted, not stored.
async fn sent_without_a_reply(bot: MockBot) -> Error {
    let mut messages = beginning(named());
    messages
        .expect_discard_reply()
        .with(eq(REPLY))
        .times(1)
        .returning(|_| Ok(()));
    messages.expect_finish_reply().never();
    service(MockConversationRepository::new(), messages, bot)
        .say_hi()
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
    for mut bot in [refused, silent] {
        bot.expect_title().never();
        let error = sent_without_a_reply(bot).await;
        assert!(matches!(error, Error::BotUnavailable(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the bot is unavailable, try again shortly"
        );
    }
}

#[tokio::test]
async fn an_empty_bot_reply_is_a_bot_failure_and_stores_nothing() {
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok(" \n "), Ok("")])));
    bot.expect_title().never();
    let error = sent_without_a_reply(bot).await;
    assert!(
        matches!(error, Error::BotUnavailable(BotError::Empty)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_bot_breaking_off_after_some_text_stores_that_text_as_failed() {
    let mut messages = beginning(ConversationName::default());
    messages
        .expect_finish_reply()
        .with(
            eq(REPLY),
            eq("Half a ".to_owned()),
            eq(MessageStatus::Failed),
        )
        .times(1)
        .returning(|_, text, status| Ok(Some(reply_stored(&text, status))));
    messages.expect_discard_reply().never();
    let mut bot = bot();
    bot.expect_reply().times(1).returning(|_| {
        Ok(streaming(vec![
            Ok("Half "),
            Ok("a "),
            Err(BotError::Broken(Arc::new(std::io::Error::other(
                "connection reset",
            )))),
            Ok("never read"),
        ]))
    });
    // A failed reply names nothing, even in an untitled conversation.
    bot.expect_title().never();
    let service = service(MockConversationRepository::new(), messages, bot);

    // Sending answers that the bot failed (SPEC §9: 502 `bot_unavailable`, the partial
    // reply stored as failed).
    let error = service.say_hi().await.unwrap_err();
    assert!(
        matches!(error, Error::BotUnavailable(BotError::Broken(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_reader_of_a_reply_breaking_off_sees_the_text_then_the_failed_reply() {
    let mut messages = beginning(named());
    stores_ends(&mut messages);
    let mut bot = bot();
    bot.expect_reply().times(1).returning(|_| {
        Ok(streaming(vec![
            Ok("Half "),
            Ok("a "),
            Err(BotError::Timeout),
        ]))
    });
    let service = service(MockConversationRepository::new(), messages, bot);

    let started = service.start_hi().await;
    let events = service.events(started.events).await;
    assert_eq!(
        shown(&events),
        [
            r#"started streaming """#,
            r#"delta 1 "Half ""#,
            r#"delta 2 "a ""#,
            r#"failed failed "Half a ": the model provider did not answer in time"#,
        ]
    );
    assert!(matches!(
        events.last(),
        Some(ReplyEvent::Failed {
            failure: ReplyFailure::Bot(BotError::Timeout),
            ..
        })
    ));
}

#[tokio::test]
async fn nul_characters_are_removed_from_bot_replies() {
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("a\0"), Ok("\0"), Ok("b")])));
    bot.expect_title().returning(|_, _| Ok("t".to_owned()));
    let mut messages = beginning(ConversationName::default());
    messages
        .expect_finish_reply()
        .with(eq(REPLY), eq("ab".to_owned()), eq(MessageStatus::Complete))
        .times(1)
        .returning(|_, text, status| Ok(Some(reply_stored(&text, status))));
    let service = service(titled(), messages, bot);

    let exchange = service.say_hi().await.unwrap();
    assert_eq!(exchange.bot_message.text, "ab");
}

#[tokio::test]
async fn a_conversation_deleted_while_the_bot_thinks_is_not_found() {
    let mut messages = beginning(ConversationName::default());
    messages
        .expect_finish_reply()
        .times(1)
        .returning(|_, _, _| Ok(None));
    messages
        .expect_find_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(REPLY))
        .times(1)
        .returning(|_, _, _| Ok(None));
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("too late")])));
    bot.expect_title().never();
    let service = service(MockConversationRepository::new(), messages, bot);

    let error = service.say_hi().await.unwrap_err();
    assert!(matches!(error, Error::ConversationNotFound), "{error:?}");
}

#[tokio::test]
async fn a_reply_whose_end_cannot_be_stored_is_a_storage_outage() {
    let mut messages = beginning(named());
    messages
        .expect_finish_reply()
        .times(1)
        .returning(|_, _, _| Err(StorageError::Unavailable("disk full".into())));
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("lost")])));
    let service = service(MockConversationRepository::new(), messages, bot);

    let error = service.say_hi().await.unwrap_err();
    assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");
}

// --- Starting a reply and following it. ---

#[tokio::test]
async fn start_reply_feeds_the_reply_as_created_then_numbered_deltas_then_the_stored_reply() {
    let mut sequence = Sequence::new();
    let mut messages = MockMessageRepository::new();
    messages
        .expect_begin_exchange()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, m| Ok(Some(begun(&m, named()))));
    messages
        .expect_list_messages()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, _| Ok(Some(Vec::new())));
    messages
        .expect_finish_reply()
        .with(
            eq(REPLY),
            eq("Hello, world".to_owned()),
            eq(MessageStatus::Complete),
        )
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, text, status| Ok(Some(reply_stored(&text, status))));
    messages.expect_checkpoint_reply().never();
    let mut bot = bot();
    bot.expect_reply()
        .times(1)
        .returning(|_| Ok(streaming(vec![Ok("Hello"), Ok(", "), Ok("world")])));
    let service = service(MockConversationRepository::new(), messages, bot);

    let started = service
        .run(service.start_reply(OWNER, CONVERSATION, hi()))
        .await
        .unwrap();
    assert_eq!(started.user_message.id, USER_MESSAGE);
    assert_eq!(started.user_message.text, "hi");
    let events = service.events(started.events).await;

    assert_eq!(events.len(), 5, "{:?}", shown(&events));
    assert!(
        matches!(&events[0], ReplyEvent::Started(reply) if *reply == reply_as_created()),
        "{:?}",
        shown(&events)
    );
    let mut text = String::new();
    for (event, seq) in events[1..4].iter().zip(1..) {
        let ReplyEvent::Delta(delta) = event else {
            panic!("not a delta: {}", show(event));
        };
        assert_eq!(delta.message_id, REPLY);
        assert_eq!(delta.seq, seq);
        text.push_str(&delta.text);
    }
    let final_reply = reply_stored("Hello, world", MessageStatus::Complete);
    assert_eq!(text, final_reply.text);
    assert!(
        matches!(&events[4], ReplyEvent::Done(reply) if *reply == final_reply),
        "{:?}",
        shown(&events)
    );
}

#[tokio::test]
async fn following_a_reply_written_here_reads_it_from_memory_from_where_the_reader_was() {
    let pipe = Pipe::default();
    let mut messages = beginning(named());
    stores_ends(&mut messages);
    messages.expect_find_reply().never();
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );

    let started = service.start_hi().await;
    for piece in ["a", "b", "c"] {
        pipe.write(piece);
    }
    service.settle().await;
    let mut resumed = service
        .follow_reply(OWNER, CONVERSATION, REPLY, Some(1))
        .await
        .unwrap();
    let from_the_start = service
        .follow_reply(OWNER, CONVERSATION, REPLY, None)
        .await
        .unwrap();
    let seen: Vec<String> = (0..2)
        .map(|_| show(&next_now(&mut resumed).flatten().unwrap()))
        .collect();
    assert_eq!(seen, [r#"delta 2 "b""#, r#"delta 3 "c""#]);
    assert!(next_now(&mut resumed).is_none(), "nothing more came yet");

    pipe.end_with("d");
    service.settle().await;
    assert_eq!(
        shown(&service.events(resumed).await),
        [r#"delta 4 "d""#, r#"done complete "abcd""#]
    );
    assert_eq!(
        shown(&service.events(from_the_start).await),
        shown(&service.events(started.events).await),
    );
}

#[tokio::test]
async fn a_finished_reply_followed_from_the_store_is_its_outcome_alone() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_find_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(MessageId::new(7)))
        .returning(|_, _, _| {
            Ok(Some(ReplySnapshot {
                message: Message {
                    id: MessageId::new(7),
                    ..reply_stored("All done.", MessageStatus::Complete)
                },
                ends: Vec::new(),
            }))
        });
    messages
        .expect_find_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(MessageId::new(8)))
        .returning(|_, _, _| {
            Ok(Some(ReplySnapshot {
                message: Message {
                    id: MessageId::new(8),
                    ..reply_stored("Half", MessageStatus::Failed)
                },
                ends: Vec::new(),
            }))
        });
    messages.expect_find_reply().returning(|_, _, _| Ok(None));
    let service = service(MockConversationRepository::new(), messages, bot());

    for after in [None, Some(3)] {
        let done = service
            .follow_reply(OWNER, CONVERSATION, MessageId::new(7), after)
            .await
            .unwrap();
        assert_eq!(
            shown(&service.events(done).await),
            [r#"done complete "All done.""#]
        );
        let failed = service
            .follow_reply(OWNER, CONVERSATION, MessageId::new(8), after)
            .await
            .unwrap();
        let events = service.events(failed).await;
        assert_eq!(events.len(), 1, "{:?}", shown(&events));
        assert!(
            matches!(
                &events[0],
                ReplyEvent::Failed {
                    failure: ReplyFailure::BrokeOff,
                    message: Some(message),
                } if message.text == "Half" && message.status == MessageStatus::Failed
            ),
            "{:?}",
            shown(&events)
        );
    }
    let missing = service
        .follow_reply(OWNER, CONVERSATION, MessageId::new(9), None)
        .await;
    assert!(matches!(missing, Err(Error::MessageNotFound)));
}

/// The reply as another process checkpointed it: `text` cut into deltas ending at
/// `ends`.
fn checkpointed(text: &str, ends: Vec<usize>) -> ReplySnapshot {
    ReplySnapshot {
        message: reply_stored(text, MessageStatus::Streaming),
        ends,
    }
}

#[tokio::test]
async fn a_reply_written_elsewhere_is_followed_through_its_checkpoints_to_its_end() {
    let looks = Arc::new(AtomicUsize::new(0));
    let mut messages = MockMessageRepository::new();
    let counted = Arc::clone(&looks);
    messages
        .expect_find_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(REPLY))
        .returning(move |_, _, _| {
            let snapshot = match counted.fetch_add(1, Ordering::SeqCst) {
                0 => checkpointed("Hello, wor", vec![5, 7, 10]),
                1 => checkpointed("Hello, world", vec![5, 7, 10, 12]),
                _ => ReplySnapshot {
                    message: reply_stored("Hello, world!", MessageStatus::Complete),
                    ends: Vec::new(),
                },
            };
            Ok(Some(snapshot))
        });
    let service = service(MockConversationRepository::new(), messages, bot());
    let every = StreamSettings::DEFAULT.follow_every;

    let mut feed = service
        .follow_reply(OWNER, CONVERSATION, REPLY, Some(1))
        .await
        .unwrap();
    let seen: Vec<String> = (0..2)
        .map(|_| show(&next_now(&mut feed).flatten().unwrap()))
        .collect();
    assert_eq!(seen, [r#"delta 2 ", ""#, r#"delta 3 "wor""#]);
    // It looks at the store again only when the clock says so.
    assert!(next_now(&mut feed).is_none());
    service.clock.advance(every - ms(1));
    assert!(next_now(&mut feed).is_none());
    assert_eq!(looks.load(Ordering::SeqCst), 1);

    service.clock.advance(ms(1));
    let event = next_now(&mut feed).flatten().unwrap();
    assert_eq!(show(&event), r#"delta 4 "ld""#);
    assert_eq!(looks.load(Ordering::SeqCst), 2);
    assert!(next_now(&mut feed).is_none());

    // Finished: the rest of its text as one last delta, then the stored reply.
    service.clock.advance(every);
    let rest: Vec<String> = (0..2)
        .map(|_| show(&next_now(&mut feed).flatten().unwrap()))
        .collect();
    assert_eq!(rest, [r#"delta 5 "!""#, r#"done complete "Hello, world!""#]);
    assert!(matches!(next_now(&mut feed), Some(None)), "the feed ends");
}

#[tokio::test]
async fn a_reply_written_elsewhere_followed_from_the_start_begins_with_the_reply_as_created() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_find_reply()
        .returning(|_, _, _| Ok(Some(checkpointed("Hi", vec![2]))));
    let service = service(MockConversationRepository::new(), messages, bot());

    let mut feed = service
        .follow_reply(OWNER, CONVERSATION, REPLY, None)
        .await
        .unwrap();
    let started = next_now(&mut feed).flatten().unwrap();
    assert!(
        matches!(&started, ReplyEvent::Started(reply) if *reply == reply_as_created()),
        "{}",
        show(&started)
    );
    assert_eq!(
        show(&next_now(&mut feed).flatten().unwrap()),
        r#"delta 1 "Hi""#
    );
}

#[tokio::test]
async fn a_reader_ahead_of_the_checkpoints_gets_the_end_without_a_repeat() {
    let looks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&looks);
    let mut messages = MockMessageRepository::new();
    messages.expect_find_reply().returning(move |_, _, _| {
        Ok(Some(match counted.fetch_add(1, Ordering::SeqCst) {
            0 => checkpointed("abc", vec![1, 2, 3]),
            _ => ReplySnapshot {
                message: reply_stored("abcdef", MessageStatus::Interrupted),
                ends: Vec::new(),
            },
        }))
    });
    let service = service(MockConversationRepository::new(), messages, bot());

    // It had seen five deltas, live from the process writing the reply.
    let mut feed = service
        .follow_reply(OWNER, CONVERSATION, REPLY, Some(5))
        .await
        .unwrap();
    assert!(next_now(&mut feed).is_none());
    service.clock.advance(StreamSettings::DEFAULT.follow_every);
    assert_eq!(
        shown(&service.events(feed).await),
        [r#"done interrupted "abcdef""#]
    );
}

// --- Checkpoints. ---

#[tokio::test]
async fn text_is_checkpointed_within_checkpoint_every_and_silence_gets_a_heartbeat() {
    let pipe = Pipe::default();
    // Each checkpoint's text, delta ends and time.
    type Checkpoints = Vec<(String, Vec<usize>, Timestamp)>;
    let checkpoints: Arc<Mutex<Checkpoints>> = Arc::default();
    let mut messages = beginning(named());
    let recorded = Arc::clone(&checkpoints);
    messages
        .expect_checkpoint_reply()
        .withf(|reply, _, _| *reply == REPLY)
        .returning(move |_, text, at| {
            lock(&recorded).push((text.as_str().to_owned(), text.ends().to_vec(), at));
            Ok(true)
        });
    // While nothing is to be stored, it looks whether it was stopped elsewhere.
    messages
        .expect_find_reply()
        .returning(|_, _, _| Ok(Some(checkpointed("", vec![]))));
    messages
        .expect_finish_reply()
        .with(
            eq(REPLY),
            eq("Hello!".to_owned()),
            eq(MessageStatus::Complete),
        )
        .times(1)
        .returning(|_, text, status| Ok(Some(reply_stored(&text, status))));
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );
    let settings = StreamSettings::DEFAULT;
    let every = settings.checkpoint_every;
    let heartbeat = settings.heartbeat_every();
    let written = || lock(&checkpoints).clone();
    let at = |millis: u64| now().saturating_add(ms(millis));
    let heartbeat_ms = u64::try_from(heartbeat.as_millis()).unwrap();
    let every_ms = u64::try_from(every.as_millis()).unwrap();

    let started = service.start_hi().await;
    // No text: a sign of life once a heartbeat is due, not before.
    service.advance(heartbeat - ms(1)).await;
    assert!(written().is_empty());
    service.advance(ms(1)).await;
    assert_eq!(written(), [(String::new(), vec![], at(heartbeat_ms))]);

    // Text: stored once checkpoint_every has passed, not before.
    pipe.write("Hel");
    service.settle().await;
    service.advance(every - ms(1)).await;
    assert_eq!(written().len(), 1);
    service.advance(ms(1)).await;
    let mut t = heartbeat_ms + every_ms;
    assert_eq!(written()[1], ("Hel".to_owned(), vec![3], at(t)));

    pipe.write("lo");
    service.settle().await;
    service.advance(every).await;
    t += every_ms;
    assert_eq!(written().len(), 3);
    assert_eq!(written()[2], ("Hello".to_owned(), vec![3, 5], at(t)));

    // Silence again: the next sign of life a heartbeat after the last write.
    service.advance(heartbeat - ms(1)).await;
    assert_eq!(written().len(), 3);
    service.advance(ms(1)).await;
    t += heartbeat_ms;
    assert_eq!(written()[3], ("Hello".to_owned(), vec![3, 5], at(t)));

    // Text long after the last write is stored checkpoint_every after that write,
    // at the latest checkpoint_every after it came.
    service.advance(ms(150)).await;
    pipe.write("!");
    service.settle().await;
    service.advance(every - ms(150) - ms(1)).await;
    assert_eq!(written().len(), 4);
    service.advance(ms(1)).await;
    t += every_ms;
    assert_eq!(written()[4], ("Hello!".to_owned(), vec![3, 5, 6], at(t)));

    pipe.end_with("");
    service.settle().await;
    assert_eq!(written().len(), 5, "the end is stored by finish_reply");
    assert_eq!(
        shown(&service.events(started.events).await)
            .last()
            .map(String::as_str),
        Some(r#"done complete "Hello!""#)
    );
}

#[tokio::test]
async fn a_reply_stopped_elsewhere_drops_the_bot_and_ends_as_stored() {
    let pipe = Pipe::default();
    let mut messages = beginning(named());
    messages
        .expect_checkpoint_reply()
        .times(1)
        .returning(|_, _, _| Ok(false));
    messages
        .expect_find_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(REPLY))
        .times(1)
        .returning(|_, _, _| {
            Ok(Some(ReplySnapshot {
                message: reply_stored("So", MessageStatus::Interrupted),
                ends: Vec::new(),
            }))
        });
    messages.expect_finish_reply().never();
    messages.expect_discard_reply().never();
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );

    let started = service.start_hi().await;
    pipe.write("Some");
    service.settle().await;
    service
        .advance(StreamSettings::DEFAULT.checkpoint_every)
        .await;
    assert!(pipe.dropped(), "the bot is stopped");
    assert_eq!(
        shown(&service.events(started.events).await),
        [
            r#"started streaming """#,
            r#"delta 1 "Some""#,
            r#"done interrupted "So""#,
        ]
    );
}

#[tokio::test]
async fn a_reply_stopped_elsewhere_while_the_bot_thinks_stops_the_bot_at_the_next_look() {
    let pipe = Pipe::default();
    let looks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&looks);
    let mut messages = beginning(named());
    messages.expect_checkpoint_reply().never();
    messages
        .expect_find_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(REPLY))
        .returning(move |_, _, _| {
            // Stopped from another process between the first and the second look.
            let status = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                MessageStatus::Streaming
            } else {
                MessageStatus::Interrupted
            };
            Ok(Some(ReplySnapshot {
                message: reply_stored("", status),
                ends: Vec::new(),
            }))
        });
    messages.expect_finish_reply().never();
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );
    let probe = StreamSettings::DEFAULT.probe_every;

    let started = service.start_hi().await;
    service.advance(probe - ms(1)).await;
    assert_eq!(
        looks.load(Ordering::SeqCst),
        0,
        "no look before probe_every"
    );
    service.advance(ms(1)).await;
    assert!(!pipe.dropped(), "still streaming at the first look");
    service.advance(probe).await;
    assert!(pipe.dropped(), "the bot is stopped at the next look");
    assert_eq!(
        shown(&service.events(started.events).await),
        [r#"started streaming """#, r#"done interrupted """#]
    );
}

#[tokio::test]
async fn a_failing_checkpoint_is_tried_again_and_the_reply_goes_on() {
    let pipe = Pipe::default();
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tries);
    let mut messages = beginning(named());
    messages
        .expect_checkpoint_reply()
        .returning(move |_, _, _| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(StorageError::Unavailable("pool timed out".into()))
            } else {
                Ok(true)
            }
        });
    stores_ends(&mut messages);
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );
    let every = StreamSettings::DEFAULT.checkpoint_every;

    let started = service.start_hi().await;
    pipe.write("a");
    service.settle().await;
    service.advance(every).await;
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    // The text is still not stored: again after checkpoint_every, not a heartbeat.
    service.advance(every).await;
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    pipe.end_with("b");
    assert_eq!(
        shown(&service.events(started.events).await)
            .last()
            .map(String::as_str),
        Some(r#"done complete "ab""#)
    );
}

// --- Stopping. ---

#[tokio::test]
async fn stopping_a_reply_written_here_drops_the_bot_and_keeps_the_text_as_interrupted() {
    let pipe = Pipe::default();
    let bot_dropped_before_storing = Arc::new(Mutex::new(None));
    let mut messages = beginning(ConversationName::default());
    let dropped = pipe.clone();
    let seen = Arc::clone(&bot_dropped_before_storing);
    messages
        .expect_finish_reply()
        .with(
            eq(REPLY),
            eq("Half".to_owned()),
            eq(MessageStatus::Interrupted),
        )
        .times(1)
        .returning(move |_, text, status| {
            *lock(&seen) = Some(dropped.dropped());
            Ok(Some(reply_stored(&text, status)))
        });
    messages.expect_interrupt_reply().never();
    // An interrupted reply does not name the untitled conversation.
    let mut conversations = MockConversationRepository::new();
    conversations.expect_title_conversation().never();
    let service = service(conversations, messages, piped_bot(&pipe));

    let started = service.start_hi().await;
    pipe.write("Half");
    service.settle().await;
    assert!(!pipe.dropped());
    let stopped = service
        .run(service.stop_reply(OWNER, Some(CONVERSATION), REPLY))
        .await
        .unwrap();

    assert_eq!(stopped, reply_stored("Half", MessageStatus::Interrupted));
    assert!(pipe.dropped());
    assert_eq!(
        *lock(&bot_dropped_before_storing),
        Some(true),
        "the bot is stopped before the text is stored"
    );
    assert_eq!(
        shown(&service.events(started.events).await),
        [
            r#"started streaming """#,
            r#"delta 1 "Half""#,
            r#"done interrupted "Half""#,
        ]
    );
}

#[tokio::test]
async fn stopping_a_reply_not_written_here_interrupts_it_in_the_store() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_interrupt_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(MessageId::new(7)))
        .times(1)
        .returning(|_, _, _| {
            Ok(Some(Message {
                id: MessageId::new(7),
                ..reply_stored("So far", MessageStatus::Interrupted)
            }))
        });
    messages
        .expect_interrupt_reply()
        .with(eq(OWNER), eq(CONVERSATION), eq(MessageId::new(8)))
        .times(1)
        .returning(|_, _, _| Ok(None));
    let service = service(MockConversationRepository::new(), messages, bot());

    let stopped = service
        .stop_reply(OWNER, Some(CONVERSATION), MessageId::new(7))
        .await
        .unwrap();
    assert_eq!(stopped.id, MessageId::new(7));
    assert_eq!(stopped.text, "So far");
    assert_eq!(stopped.status, MessageStatus::Interrupted);

    let missing = service
        .stop_reply(OWNER, Some(CONVERSATION), MessageId::new(8))
        .await;
    assert!(
        matches!(missing, Err(Error::MessageNotFound)),
        "{missing:?}"
    );
}

#[tokio::test]
async fn another_user_can_neither_follow_nor_stop_a_reply_written_here() {
    let intruder = UserId::new(2);
    let pipe = Pipe::default();
    let mut messages = beginning(named());
    messages
        .expect_find_reply()
        .with(eq(intruder), eq(CONVERSATION), eq(REPLY))
        .times(1)
        .returning(|_, _, _| Ok(None));
    messages
        .expect_interrupt_reply()
        .with(eq(intruder), eq(CONVERSATION), eq(REPLY))
        .times(1)
        .returning(|_, _, _| Ok(None));
    stores_ends(&mut messages);
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );

    let started = service.start_hi().await;
    pipe.write("mine");
    service.settle().await;
    let followed = service
        .follow_reply(intruder, CONVERSATION, REPLY, None)
        .await;
    assert!(matches!(followed, Err(Error::MessageNotFound)));
    let stopped = service
        .stop_reply(intruder, Some(CONVERSATION), REPLY)
        .await;
    assert!(matches!(stopped, Err(Error::MessageNotFound)));
    service.settle().await;
    assert!(!pipe.dropped(), "the reply goes on");

    pipe.end_with("");
    assert_eq!(
        shown(&service.events(started.events).await)
            .last()
            .map(String::as_str),
        Some(r#"done complete "mine""#)
    );
}

// --- Dead writers and shutting down. ---

#[tokio::test]
async fn stale_replies_are_those_silent_for_stale_after() {
    let stale_after = Duration::from_secs(60);
    let mut messages = MockMessageRepository::new();
    messages
        .expect_interrupt_stale_replies()
        .with(eq(now().saturating_sub(stale_after)))
        .times(1)
        .returning(|_| {
            Ok(vec![
                (OWNER, reply_stored("So", MessageStatus::Interrupted)),
                (OWNER, reply_stored("Far", MessageStatus::Interrupted)),
            ])
        });
    let service =
        service(MockConversationRepository::new(), messages, bot()).with_replies(ReplySettings {
            streaming: StreamSettings {
                stale_after,
                ..StreamSettings::DEFAULT
            },
            ..ReplySettings::default()
        });

    assert_eq!(service.interrupt_stale_replies().await.unwrap(), 2);
}

#[tokio::test]
async fn finishing_refuses_new_replies_and_stops_those_running_after_the_grace() {
    let pipe = Pipe::default();
    let begun_exchanges = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&begun_exchanges);
    let mut messages = MockMessageRepository::new();
    messages.expect_begin_exchange().returning(move |_, _, m| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(Some(begun(&m, named())))
    });
    messages
        .expect_list_messages()
        .returning(|_, _, _| Ok(Some(Vec::new())));
    // A message sent while shutting down is refused before anything is stored.
    messages.expect_discard_reply().never();
    messages
        .expect_find_reply()
        .returning(|_, _, _| Ok(Some(checkpointed("", vec![]))));
    messages
        .expect_checkpoint_reply()
        .returning(|_, _, _| Ok(true));
    let stored = Arc::new(Mutex::new(None));
    let kept = Arc::clone(&stored);
    messages
        .expect_finish_reply()
        .times(1)
        .returning(move |_, text, status| {
            *lock(&kept) = Some((text.clone(), status));
            Ok(Some(reply_stored(&text, status)))
        });
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );
    let grace = Duration::from_secs(1);
    let step = ms(50);

    let started = service.start_hi().await;
    pipe.write("Partial");
    service.settle().await;
    let mut finishing = pin!(service.finish_replies(grace));
    assert!(finishing.as_mut().now_or_never().is_none());

    let refused = service
        .run(service.start_reply(OWNER, CONVERSATION, hi()))
        .await;
    assert!(matches!(refused, Err(Error::ShuttingDown)), "{refused:?}");
    assert_eq!(begun_exchanges.load(Ordering::SeqCst), 1, "nothing stored");

    // Within the grace, the reply goes on.
    let mut waited = Duration::ZERO;
    while waited + step < grace {
        service.advance(step).await;
        waited += step;
        assert!(finishing.as_mut().now_or_never().is_none());
        service.settle().await;
        assert!(!pipe.dropped(), "stopped after {waited:?}");
    }
    // Then it is stopped and kept as interrupted.
    service.advance(step).await;
    assert!(finishing.as_mut().now_or_never().is_none());
    service.settle().await;
    assert!(pipe.dropped());
    assert_eq!(
        *lock(&stored),
        Some(("Partial".to_owned(), MessageStatus::Interrupted))
    );
    service.advance(step).await;
    assert!(finishing.as_mut().now_or_never().is_some());
    assert_eq!(
        shown(&service.events(started.events).await)
            .last()
            .map(String::as_str),
        Some(r#"done interrupted "Partial""#)
    );
}

#[tokio::test]
async fn finishing_lets_a_reply_end_within_the_grace() {
    let pipe = Pipe::default();
    let mut messages = beginning(named());
    messages
        .expect_finish_reply()
        .with(
            eq(REPLY),
            eq("In time.".to_owned()),
            eq(MessageStatus::Complete),
        )
        .times(1)
        .returning(|_, text, status| Ok(Some(reply_stored(&text, status))));
    let service = service(
        MockConversationRepository::new(),
        messages,
        piped_bot(&pipe),
    );

    let started = service.start_hi().await;
    let mut finishing = pin!(service.finish_replies(Duration::from_secs(1)));
    assert!(finishing.as_mut().now_or_never().is_none());
    pipe.end_with("In time.");
    service.settle().await;
    service.advance(ms(50)).await;
    assert!(finishing.as_mut().now_or_never().is_some());
    assert_eq!(
        shown(&service.events(started.events).await)
            .last()
            .map(String::as_str),
        Some(r#"done complete "In time.""#)
    );
}

// --- Events. ---

/// Keeps what is published.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventPublisher for Recorder {
    fn publish(&self, event: Event) {
        lock(&self.0).push(event);
    }
}

impl Recorder {
    /// What was published, each as a short description; every event is the owner's.
    fn shown(&self) -> Vec<String> {
        lock(&self.0)
            .iter()
            .map(|event| {
                assert_eq!(event.owner, OWNER, "{event:?}");
                match &event.change {
                    Change::MessageCreated(m) => {
                        format!("created {} {} {:?}", m.sender, m.status, m.text)
                    }
                    Change::MessageDelta {
                        conversation_id,
                        delta,
                    } => {
                        assert_eq!((*conversation_id, delta.message_id), (CONVERSATION, REPLY));
                        format!("delta {} {:?}", delta.seq, delta.text)
                    }
                    Change::MessageUpdated(m) => format!("updated {} {:?}", m.status, m.text),
                    Change::ConversationCreated(c) => {
                        format!("conversation created {}", c.name.as_str())
                    }
                    Change::ConversationUpdated(c) => {
                        format!("conversation updated {}", c.name.as_str())
                    }
                    Change::ConversationDeleted(id) => format!("conversation deleted {id}"),
                    Change::SessionsEnded => "sessions ended".to_owned(),
                }
            })
            .collect()
    }
}

#[tokio::test]
async fn a_send_publishes_both_messages_each_delta_the_stored_reply_then_the_title() {
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("Hi "), Ok("there")])));
    bot.expect_title()
        .returning(|_, _| Ok("Greetings".to_owned()));
    let events = Arc::new(Recorder::default());
    let service = service(titled(), storing_messages(), bot).with_events(events.clone());

    service.say_hi().await.unwrap();
    assert_eq!(
        events.shown(),
        [
            r#"created user complete "hi""#,
            r#"created bot streaming """#,
            r#"delta 1 "Hi ""#,
            r#"delta 2 "there""#,
            r#"updated complete "Hi there""#,
            "conversation updated Greetings",
        ]
    );
}

#[tokio::test]
async fn a_reply_that_failed_with_nothing_is_published_failed_and_empty() {
    let mut bot = bot();
    bot.expect_reply().returning(|_| Err(BotError::Timeout));
    let mut messages = beginning(named());
    messages
        .expect_discard_reply()
        .times(1)
        .returning(|_| Ok(()));
    let events = Arc::new(Recorder::default());
    let service =
        service(MockConversationRepository::new(), messages, bot).with_events(events.clone());

    assert!(service.say_hi().await.is_err());
    assert_eq!(
        events.shown(),
        [
            r#"created user complete "hi""#,
            r#"created bot streaming """#,
            r#"updated failed """#,
        ]
    );
}

#[tokio::test]
async fn conversations_created_renamed_and_deleted_are_published() {
    let mut conversations = MockConversationRepository::new();
    conversations
        .expect_insert_conversation()
        .returning(|new, _| Ok(Some(conversation(new.name.as_str()))));
    conversations
        .expect_rename_conversation()
        .returning(|_, _, name, _| Ok(Some(conversation(name.as_str()))));
    conversations
        .expect_delete_conversation()
        .returning(|_, _| Ok(true));
    let events = Arc::new(Recorder::default());
    let service =
        service(conversations, MockMessageRepository::new(), bot()).with_events(events.clone());

    let name = |n: &str| ConversationName::parse(n).unwrap();
    service
        .create_conversation(OWNER, name("Trip"))
        .await
        .unwrap();
    service
        .rename_conversation(OWNER, CONVERSATION, name("Oslo"))
        .await
        .unwrap();
    service
        .delete_conversation(OWNER, CONVERSATION)
        .await
        .unwrap();
    assert_eq!(
        events.shown(),
        [
            "conversation created Trip",
            "conversation updated Oslo",
            "conversation deleted 10",
        ]
    );
}

#[tokio::test]
async fn replies_stopped_or_found_dead_elsewhere_are_published_as_stored() {
    let mut messages = MockMessageRepository::new();
    messages
        .expect_interrupt_reply()
        .returning(|_, _, _| Ok(Some(reply_stored("So", MessageStatus::Interrupted))));
    messages.expect_interrupt_stale_replies().returning(|_| {
        Ok(vec![(
            OWNER,
            reply_stored("Far", MessageStatus::Interrupted),
        )])
    });
    let events = Arc::new(Recorder::default());
    let service =
        service(MockConversationRepository::new(), messages, bot()).with_events(events.clone());

    service
        .stop_reply(OWNER, Some(CONVERSATION), REPLY)
        .await
        .unwrap();
    assert_eq!(service.interrupt_stale_replies().await.unwrap(), 1);
    assert_eq!(
        events.shown(),
        [
            r#"updated interrupted "So""#,
            r#"updated interrupted "Far""#
        ]
    );
}

// --- The database away when a reply ends. ---

#[tokio::test]
async fn an_end_that_cannot_be_stored_answers_at_once_is_retried_and_a_send_waiting_on_it_goes_through()
 {
    let begins = Arc::new(AtomicUsize::new(0));
    let finishes = Arc::new(AtomicUsize::new(0));
    let mut messages = MockMessageRepository::new();
    let counted = Arc::clone(&begins);
    messages.expect_begin_exchange().returning(move |_, _, m| {
        // The second message comes while the first reply's end is not stored yet.
        if counted.fetch_add(1, Ordering::SeqCst) == 1 {
            Err(StorageError::Conflict)
        } else {
            Ok(Some(begun(&m, named())))
        }
    });
    messages
        .expect_list_messages()
        .returning(|_, _, _| Ok(Some(Vec::new())));
    let counted = Arc::clone(&finishes);
    messages
        .expect_finish_reply()
        .returning(move |_, text, status| {
            // The database is away for the first two tries.
            if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(StorageError::Unavailable("connection refused".into()))
            } else {
                Ok(Some(reply_stored(&text, status)))
            }
        });
    let mut bot = bot();
    bot.expect_reply()
        .returning(|_| Ok(streaming(vec![Ok("Hello")])));
    let service = service(MockConversationRepository::new(), messages, bot);

    let first = service.say_hi().await;
    assert!(
        matches!(first, Err(Error::StorageUnavailable(_))),
        "{first:?}"
    );
    assert_eq!(
        finishes.load(Ordering::SeqCst),
        1,
        "answered after the first try"
    );

    let second = service.send_message(OWNER, CONVERSATION, hi());
    let time_passes = async {
        for _ in 0..20 {
            service.advance(ms(50)).await;
        }
    };
    let (second, ()) = futures_util::future::join(second, time_passes).await;
    let exchange = second.unwrap();
    assert_eq!(exchange.bot_message.text, "Hello");
    assert_eq!(
        begins.load(Ordering::SeqCst),
        3,
        "the send waited for the end, then began"
    );
    assert_eq!(
        finishes.load(Ordering::SeqCst),
        4,
        "3 tries for the first end, 1 for the second"
    );
}
