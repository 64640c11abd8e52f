use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;

use super::Events;
use super::replies::{
    Generation, Generations, Giver, StoredFollower, StreamSettings, drained, handoff,
};
use crate::ports::{
    Bot, Clock, ConversationRepository, EventPublisher, MessageRepository, Spawner, Timer,
};
use crate::use_cases::Chat;
use crate::{
    BegunExchange, BotError, Change, Conversation, ConversationCursor, ConversationId,
    ConversationName, ConversationWithMessages, Error, Exchange, Message, MessageCursor, MessageId,
    MessageStatus, MessageText, NewConversation, NewMessage, Page, PageRequest, ReplyContext,
    ReplyEvent, ReplyFailure, ReplyFeed, ReplyStream, Revision, Sender, StartedReply, StorageError,
    Timestamp, UserId, Window,
};

/// How the bot is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySettings {
    /// The instructions before every conversation.
    pub system_prompt: String,
    /// How many of the conversation's most recent messages the bot sees besides the
    /// new one.
    pub history_messages: usize,
    /// How replies are checkpointed and followed.
    pub streaming: StreamSettings,
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
            streaming: StreamSettings::DEFAULT,
        }
    }
}

/// Where replies are written: in the background, apart from the request that asked
/// for them, waiting through a timer.
#[derive(Clone)]
pub struct Background {
    /// Runs each reply's writer.
    pub spawner: Arc<dyn Spawner>,
    /// Paces checkpoints, heartbeats and readers of other processes' replies.
    pub timer: Arc<dyn Timer>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").finish_non_exhaustive()
    }
}

/// Conversations and messages, each use case on behalf of one user who only ever sees
/// and changes their own conversations: another user's conversation is
/// [not found](Error::ConversationNotFound).
///
/// A reply is written by a task of its own, registered in this service, so it
/// outlives the request that asked for it; its text is checkpointed in the store, so
/// that any process sharing the store can follow, stop, or (when its writer died)
/// close it.
#[derive(Debug)]
pub struct ChatService<R, M, B, C> {
    inner: Arc<Inner<R, M, B, C>>,
}

#[derive(Debug)]
struct Inner<R, M, B, C> {
    conversations: R,
    // Shared with the readers of replies other processes write.
    messages: Arc<M>,
    bot: B,
    clock: C,
    replies: ReplySettings,
    background: Background,
    generations: Generations,
    events: Events,
    max_conversations: u32,
}

impl<R, M, B, C> ChatService<R, M, B, C>
where
    R: ConversationRepository + 'static,
    M: MessageRepository + 'static,
    B: Bot + 'static,
    C: Clock + 'static,
{
    /// A service over these stores, this bot and this clock, writing replies in
    /// `background`, asking the bot with the default [`ReplySettings`].
    pub fn new(conversations: R, messages: M, bot: B, clock: C, background: Background) -> Self {
        Self {
            inner: Arc::new(Inner {
                conversations,
                messages: Arc::new(messages),
                bot,
                clock,
                replies: ReplySettings::default(),
                background,
                generations: Generations::default(),
                events: Events::default(),
                max_conversations: Self::DEFAULT_MAX_CONVERSATIONS,
            }),
        }
    }

    /// How many conversations a user may have unless configured otherwise.
    pub const DEFAULT_MAX_CONVERSATIONS: u32 = 10_000;

    /// The same service, refusing a user a new conversation once they have `most`.
    ///
    /// # Panics
    /// When called after the service started a reply (it is meant for building).
    #[must_use]
    pub fn with_max_conversations(mut self, most: u32) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.max_conversations = most,
            None => unreachable!("with_max_conversations is called while building"),
        }
        self
    }

    /// The same service, passing every change it makes to `events`.
    ///
    /// # Panics
    /// When called after the service started a reply (it is meant for building).
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn EventPublisher>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.events = Events::to(events),
            None => unreachable!("with_events is called while building, before any reply"),
        }
        self
    }

    /// The same service, asking the bot as `replies` says.
    ///
    /// # Panics
    /// When called after the service started a reply (it is meant for building).
    #[must_use]
    pub fn with_replies(mut self, replies: ReplySettings) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.replies = replies,
            None => unreachable!("with_replies is called while building, before any reply"),
        }
        self
    }
}

impl<R, M, B, C> Inner<R, M, B, C>
where
    R: ConversationRepository + 'static,
    M: MessageRepository + 'static,
    B: Bot + 'static,
    C: Clock + 'static,
{
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

    /// Stores the user's message with an empty reply after it, and starts writing
    /// the reply in the background. The storing happens in the background task too:
    /// a request dropped half-way (its client went) can never leave a reply stored
    /// that nobody writes.
    async fn start(
        self: &Arc<Self>,
        owner: UserId,
        id: ConversationId,
        text: MessageText,
    ) -> Result<(Message, Arc<Generation>), Error> {
        if self.generations.is_closing() {
            return Err(Error::ShuttingDown);
        }
        let (giver, taker) = handoff();
        let writer = Arc::clone(self);
        self.background.spawner.spawn(Box::pin(async move {
            writer.begin_and_write(owner, id, text, giver).await;
        }));
        // Nothing handed over: the runtime dropped the task, which it does only when
        // stopping.
        taker.await.unwrap_or(Err(Error::ShuttingDown))
    }

    async fn begin_and_write(
        self: Arc<Self>,
        owner: UserId,
        id: ConversationId,
        text: MessageText,
        giver: Giver<Result<(Message, Arc<Generation>), Error>>,
    ) {
        let message = NewMessage {
            sender: Sender::User,
            text: text.into_string(),
            status: MessageStatus::Complete,
            created_at: self.clock.now(),
        };
        let mut begun = self
            .messages
            .begin_exchange(owner, id, message.clone())
            .await;
        if matches!(begun, Err(StorageError::Conflict))
            && let Some(ending) = self.generations.ending_in(owner, id)
        {
            // The reply in the way is over, only its end not stored yet (the database
            // was away): once it is, this message can go.
            let waited = ending.closed();
            let timer = self.background.timer.sleep(Duration::from_secs(2));
            futures_util::future::select(std::pin::pin!(waited), timer).await;
            begun = self.messages.begin_exchange(owner, id, message).await;
        }
        let begun = match begun {
            Ok(Some(begun)) => begun,
            Ok(None) => return giver.give(Err(Error::ConversationNotFound)),
            Err(StorageError::Conflict) => return giver.give(Err(Error::ReplyInProgress)),
            Err(error) => return giver.give(Err(error.into())),
        };
        let BegunExchange {
            user_message,
            reply,
            conversation_name,
        } = begun;
        // Closing since the caller looked: the reply is not started after all.
        let Some(generation) = self.generations.register(owner, reply.clone()) else {
            self.close_unwritten(reply.id).await;
            return giver.give(Err(Error::ShuttingDown));
        };
        self.events
            .publish(owner, Change::MessageCreated(user_message.clone()));
        self.events
            .publish(owner, Change::MessageCreated(reply.clone()));
        giver.give(Ok((user_message.clone(), Arc::clone(&generation))));
        let untitled = conversation_name == ConversationName::default();
        self.write(owner, &generation, user_message, untitled).await;
    }

    /// Deletes a reply that will never be written, so its conversation takes
    /// messages again.
    async fn close_unwritten(&self, reply: MessageId) {
        if let Err(error) = self.messages.discard_reply(reply).await {
            tracing::warn!(%error, "could not delete an unwritten reply; it will be interrupted when found stale");
        }
    }

    /// Writes the reply of `generation` to the user's `message` to its end, lets the
    /// readers know, then names an untitled conversation after a complete reply.
    async fn write(
        &self,
        owner: UserId,
        generation: &Generation,
        message: Message,
        untitled: bool,
    ) {
        // Whatever ends this task (a panic included), the reply leaves the registry
        // and its readers get an outcome.
        let _unregister = Unregister {
            generations: &self.generations,
            generation,
        };
        let user_text = message.text.clone();
        let outcome = match self.context(owner, message).await {
            Ok(context) => self.write_reply(owner, generation, context).await,
            Err(error) => {
                tracing::warn!(%error, "could not read the history for a reply");
                self.close_unwritten(generation.reply().id).await;
                ReplyEvent::Failed {
                    failure: match error {
                        Error::ConversationNotFound => ReplyFailure::Gone,
                        _ => ReplyFailure::Unstored,
                    },
                    message: None,
                }
            }
        };
        if let Some(ended) = ended_reply(generation.reply(), &outcome) {
            self.events.publish(owner, Change::MessageUpdated(ended));
        }
        let titled = match &outcome {
            ReplyEvent::Done(reply) if untitled && reply.status == MessageStatus::Complete => {
                Some((reply.conversation_id, reply.text.clone()))
            }
            _ => None,
        };
        generation.finish(outcome);
        if let Some((id, reply)) = titled {
            self.give_title(owner, id, &user_text, &reply).await;
        }
    }

    /// Asks the bot and takes its text as it comes, storing it at least every
    /// `checkpoint_every` while it arrives, and a sign of life every
    /// `heartbeat_every` while none does, until the bot is done, fails, or the reply
    /// is stopped: here, or from elsewhere (then a checkpoint, or a look every
    /// `probe_every` while no text comes, finds it no longer streaming).
    ///
    /// A checkpoint is stored while the text goes on flowing to the readers: with
    /// many replies at once the store may take a while (SQLite writes one at a time),
    /// and a reader must not wait for it. One checkpoint at a time per reply.
    async fn write_reply(
        &self,
        owner: UserId,
        generation: &Generation,
        context: ReplyContext,
    ) -> ReplyEvent {
        let settings = self.replies.streaming;
        let reply = generation.reply();
        let id = reply.id;
        let timer = &self.background.timer;
        let mut written_at = self.clock.now();
        let mut checkpointed = 0;
        let mut due = timer.sleep(settings.idle_wait(Duration::ZERO));
        let mut starting = Some(self.bot.reply(context));
        let mut stream: Option<ReplyStream> = None;
        let mut storing: Option<Checkpoint<'_>> = None;
        loop {
            let step = std::future::poll_fn(|cx| {
                if generation.poll_stop(cx) {
                    return Poll::Ready(Step::Stop);
                }
                if let Some(start) = starting.as_mut()
                    && let Poll::Ready(started) = start.as_mut().poll(cx)
                {
                    return Poll::Ready(Step::Started(started));
                }
                if let Some(pieces) = stream.as_mut()
                    && let Poll::Ready(piece) = pieces.as_mut().poll_next(cx)
                {
                    return Poll::Ready(Step::Piece(piece));
                }
                match storing.as_mut() {
                    Some(checkpoint) => checkpoint.as_mut().poll(cx).map(Step::Stored),
                    None => due.as_mut().poll(cx).map(|()| Step::Due),
                }
            })
            .await;
            match step {
                Step::Started(Ok(pieces)) => {
                    starting = None;
                    stream = Some(pieces);
                }
                Step::Started(Err(error)) | Step::Piece(Some(Err(error))) => {
                    // Stop the bot before storing what came: nothing more is wanted.
                    drop((starting, stream, storing));
                    return self.fail(owner, generation, error).await;
                }
                Step::Piece(Some(Ok(piece))) => {
                    let was_stored = generation.deltas() == checkpointed;
                    for delta in generation.push(&piece) {
                        let conversation_id = reply.conversation_id;
                        self.events.publish(
                            owner,
                            Change::MessageDelta {
                                conversation_id,
                                delta,
                            },
                        );
                    }
                    if was_stored && generation.deltas() > checkpointed {
                        let since = self.clock.now().since(written_at);
                        due = timer.sleep(settings.checkpoint_every.saturating_sub(since));
                    }
                }
                Step::Piece(None) => {
                    // A checkpoint still being stored finds the reply ended, and
                    // changes nothing.
                    drop((stream, storing));
                    return self.end(owner, generation, MessageStatus::Complete).await;
                }
                Step::Stop => {
                    drop((starting, stream, storing));
                    return self
                        .end(owner, generation, MessageStatus::Interrupted)
                        .await;
                }
                Step::Due
                    if generation.deltas() == checkpointed
                        && self.clock.now().since(written_at) < settings.heartbeat_every() =>
                {
                    // Nothing to store yet: only see whether it was stopped elsewhere.
                    match self
                        .messages
                        .find_reply(owner, reply.conversation_id, id)
                        .await
                    {
                        Ok(Some(found)) if found.message.status == MessageStatus::Streaming => {}
                        Ok(_) => {
                            drop((starting, stream, storing));
                            return self.taken_over(owner, generation).await;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not look at a reply being written")
                        }
                    }
                    due = timer.sleep(settings.idle_wait(self.clock.now().since(written_at)));
                }
                Step::Due => {
                    let text = generation.text();
                    let now = self.clock.now();
                    let messages = &self.messages;
                    storing = Some(Box::pin(async move {
                        let stored = messages.checkpoint_reply(id, &text, now).await;
                        (stored, now, text.deltas())
                    }));
                }
                Step::Stored((stored, at, deltas)) => {
                    storing = None;
                    match stored {
                        Ok(true) => {
                            written_at = at;
                            checkpointed = deltas;
                        }
                        Ok(false) => {
                            drop((starting, stream, storing));
                            return self.taken_over(owner, generation).await;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not store a reply's progress; trying again");
                        }
                    }
                    due = timer.sleep(if generation.deltas() > checkpointed {
                        settings.checkpoint_every
                    } else {
                        settings.idle_wait(self.clock.now().since(written_at))
                    });
                }
            }
        }
    }

    /// Stores the reply's text with `status`; an empty complete reply is the bot's
    /// failure.
    async fn end(
        &self,
        owner: UserId,
        generation: &Generation,
        status: MessageStatus,
    ) -> ReplyEvent {
        let text = generation.text().into_string();
        if status == MessageStatus::Complete && text.trim().is_empty() {
            return self.fail(owner, generation, BotError::Empty).await;
        }
        let id = generation.reply().id;
        let stored = self
            .until_stored(generation, || {
                self.messages.finish_reply(id, text.clone(), status)
            })
            .await;
        match stored {
            Some(Some(message)) => ReplyEvent::Done(message),
            Some(None) => self.taken_over(owner, generation).await,
            None => unstored(),
        }
    }

    /// The bot failed: what came is stored as a failed reply; with nothing, the reply
    /// is deleted.
    async fn fail(&self, owner: UserId, generation: &Generation, error: BotError) -> ReplyEvent {
        let id = generation.reply().id;
        let text = generation.text().into_string();
        if text.trim().is_empty() {
            return match self
                .until_stored(generation, || self.messages.discard_reply(id))
                .await
            {
                Some(()) => ReplyEvent::Failed {
                    failure: ReplyFailure::Bot(error),
                    message: None,
                },
                None => unstored(),
            };
        }
        let stored = self
            .until_stored(generation, || {
                self.messages
                    .finish_reply(id, text.clone(), MessageStatus::Failed)
            })
            .await;
        match stored {
            Some(Some(message)) => ReplyEvent::Failed {
                failure: ReplyFailure::Bot(error),
                message: Some(message),
            },
            Some(None) => self.taken_over(owner, generation).await,
            None => unstored(),
        }
    }

    /// Runs `store` until it succeeds. While it fails (the database is away), the
    /// readers learn at once that the reply could not be stored, and the writer keeps
    /// trying, so that the conversation takes messages again as soon as the database
    /// is back; after `stale_after` it gives up, and a process finds the reply stale.
    async fn until_stored<T, F, Fut>(&self, generation: &Generation, mut store: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let give_up = self.replies.streaming.stale_after;
        let (mut wait, mut waited) = (Duration::from_millis(50), Duration::ZERO);
        loop {
            let error = match store().await {
                Ok(stored) => return Some(stored),
                Err(error) => error,
            };
            if waited.is_zero() {
                tracing::warn!(%error, "could not store the end of a reply; trying again");
                generation.tell(ReplyEvent::Failed {
                    failure: ReplyFailure::Unstored,
                    message: None,
                });
            }
            if waited >= give_up {
                tracing::error!(%error, "gave up storing the end of a reply; it will be found stale");
                return None;
            }
            self.background.timer.sleep(wait).await;
            waited += wait;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// The reply stopped streaming behind the writer's back: stopped from another
    /// process, declared dead, or deleted with its conversation. Its outcome is what
    /// is stored.
    async fn taken_over(&self, owner: UserId, generation: &Generation) -> ReplyEvent {
        let reply = generation.reply();
        match self
            .messages
            .find_reply(owner, reply.conversation_id, reply.id)
            .await
        {
            Ok(Some(snapshot)) => super::replies::outcome_of(snapshot.message),
            Ok(None) => ReplyEvent::Failed {
                failure: ReplyFailure::Gone,
                message: None,
            },
            Err(error) => {
                tracing::error!(%error, "could not read a reply ended elsewhere");
                unstored()
            }
        }
    }

    /// After a complete reply in a conversation that still has the default name (its
    /// first reply, or a later one if titling failed before): names it from that
    /// exchange. A title that cannot be made leaves the default name; that is only
    /// logged.
    async fn give_title(&self, owner: UserId, id: ConversationId, message: &str, reply: &str) {
        let title = match self.bot.title(message, reply).await {
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
        match self
            .conversations
            .title_conversation(owner, id, title)
            .await
        {
            Ok(Some(titled)) => self
                .events
                .publish(owner, Change::ConversationUpdated(titled)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "could not store a title; the conversation keeps its name");
            }
        }
    }

    fn follower(&self, owner: UserId) -> StoredFollower<M> {
        StoredFollower {
            messages: Arc::clone(&self.messages),
            timer: Arc::clone(&self.background.timer),
            every: self.replies.streaming.follow_every,
            owner,
        }
    }
}

/// Takes a reply out of the registry when its writer ends, and closes it: with this
/// outcome if the writer gave none.
struct Unregister<'a> {
    generations: &'a Generations,
    generation: &'a Generation,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.generations.remove(self.generation.reply().id);
        self.generation.close(ReplyEvent::Failed {
            failure: ReplyFailure::Unstored,
            message: None,
        });
    }
}

/// The reply as its readers' devices should show it once `outcome` ends it: as
/// stored, or (nothing came, so nothing is stored) failed and empty. `None` when
/// another process ended it: that one tells.
fn ended_reply(reply: &Message, outcome: &ReplyEvent) -> Option<Message> {
    match outcome {
        ReplyEvent::Done(message)
        | ReplyEvent::Failed {
            message: Some(message),
            ..
        } => Some(message.clone()),
        ReplyEvent::Failed {
            failure: ReplyFailure::Bot(_) | ReplyFailure::Unstored,
            message: None,
        } => Some(Message {
            status: MessageStatus::Failed,
            ..reply.clone()
        }),
        ReplyEvent::Failed { .. } | ReplyEvent::Started(_) | ReplyEvent::Delta(_) => None,
    }
}

/// What the writer waits for next.
enum Step {
    Started(Result<ReplyStream, BotError>),
    Piece(Option<Result<String, BotError>>),
    Due,
    Stored(Checkpointed),
    Stop,
}

/// A checkpoint's outcome, when it was taken and how many deltas it holds.
type Checkpointed = (Result<bool, StorageError>, Timestamp, u64);

/// A checkpoint being stored.
type Checkpoint<'a> = std::pin::Pin<Box<dyn Future<Output = Checkpointed> + Send + 'a>>;

/// The outcome of a reply whose end could not be stored; it stays streaming until a
/// process finds it stale.
fn unstored() -> ReplyEvent {
    ReplyEvent::Failed {
        failure: ReplyFailure::Unstored,
        message: None,
    }
}

/// The last event of `events`.
async fn last_event(mut events: ReplyFeed) -> Option<ReplyEvent> {
    let mut last = None;
    while let Some(event) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
        last = Some(event);
    }
    last
}

/// The reply a reply's last event stands for: done, or failed and so an error.
fn ended_with(event: Option<ReplyEvent>) -> Result<Message, Error> {
    match event {
        Some(ReplyEvent::Done(message)) => Ok(message),
        Some(ReplyEvent::Failed { failure, .. }) => Err(failure.into()),
        // A feed always ends with its outcome.
        Some(ReplyEvent::Started(_) | ReplyEvent::Delta(_)) | None => {
            Err(ReplyFailure::Unstored.into())
        }
    }
}

#[async_trait]
impl<R, M, B, C> Chat for ChatService<R, M, B, C>
where
    R: ConversationRepository + 'static,
    M: MessageRepository + 'static,
    B: Bot + 'static,
    C: Clock + 'static,
{
    async fn conversations(&self, owner: UserId) -> Result<Vec<ConversationWithMessages>, Error> {
        Ok(self
            .inner
            .conversations
            .list_conversations_with_messages(owner, Window::ALL)
            .await?)
    }

    async fn revision(&self, owner: UserId) -> Result<Revision, Error> {
        Ok(self.inner.conversations.revision(owner).await?)
    }

    async fn conversation_page(
        &self,
        owner: UserId,
        page: PageRequest<ConversationCursor>,
    ) -> Result<Page<Conversation, ConversationCursor>, Error> {
        let probe = Window::probing(page);
        let conversations = self
            .inner
            .conversations
            .list_conversations(owner, probe)
            .await?;
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
            .inner
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
            .inner
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
            created_at: self.inner.clock.now(),
        };
        let most = self.inner.max_conversations;
        let created = self
            .inner
            .conversations
            .insert_conversation(conversation, most)
            .await?
            .ok_or(Error::TooManyConversations { most })?;
        self.inner
            .events
            .publish(owner, Change::ConversationCreated(created.clone()));
        Ok(created)
    }

    async fn rename_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        name: ConversationName,
    ) -> Result<Conversation, Error> {
        let renamed = self
            .inner
            .conversations
            .rename_conversation(owner, id, name, self.inner.clock.now())
            .await?
            .ok_or(Error::ConversationNotFound)?;
        self.inner
            .events
            .publish(owner, Change::ConversationUpdated(renamed.clone()));
        Ok(renamed)
    }

    async fn delete_conversation(&self, owner: UserId, id: ConversationId) -> Result<(), Error> {
        if self
            .inner
            .conversations
            .delete_conversation(owner, id)
            .await?
        {
            self.inner
                .events
                .publish(owner, Change::ConversationDeleted(id));
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
        let (user_message, generation) = self.inner.start(owner, id, text).await?;
        let outcome = last_event(generation.feed(Some(u64::MAX))).await;
        // The seed's answer comes once everything is stored, the title included; but
        // at once when the database is away (the writer goes on trying to store).
        let unstored = matches!(
            outcome,
            Some(ReplyEvent::Failed {
                failure: ReplyFailure::Unstored,
                ..
            })
        );
        if !unstored {
            generation.closed().await;
        }
        let bot_message = ended_with(outcome)?;
        Ok(Exchange {
            user_message,
            bot_message,
        })
    }

    async fn start_reply(
        &self,
        owner: UserId,
        id: ConversationId,
        text: MessageText,
    ) -> Result<StartedReply, Error> {
        let (user_message, generation) = self.inner.start(owner, id, text).await?;
        Ok(StartedReply {
            user_message,
            events: generation.feed(None),
        })
    }

    async fn follow_reply(
        &self,
        owner: UserId,
        id: ConversationId,
        reply: MessageId,
        after: Option<u64>,
    ) -> Result<ReplyFeed, Error> {
        if let Some(generation) = self.inner.generations.find(owner, id, reply) {
            return Ok(generation.feed(after));
        }
        let snapshot = self
            .inner
            .messages
            .find_reply(owner, id, reply)
            .await?
            .ok_or(Error::MessageNotFound)?;
        Ok(self.inner.follower(owner).feed(snapshot, after))
    }

    async fn stop_reply(
        &self,
        owner: UserId,
        id: Option<ConversationId>,
        reply: MessageId,
    ) -> Result<Message, Error> {
        let local = self
            .inner
            .generations
            .find_any(owner, reply)
            .filter(|generation| id.is_none_or(|id| generation.reply().conversation_id == id));
        if let Some(generation) = local {
            generation.request_stop();
            return match last_event(generation.feed(Some(u64::MAX))).await {
                // A reply that failed meanwhile is returned as it is, like any
                // finished one; one that failed with no text is gone.
                Some(ReplyEvent::Failed {
                    message: Some(message),
                    ..
                }) => Ok(message),
                Some(ReplyEvent::Failed { message: None, .. }) => Err(Error::MessageNotFound),
                outcome => ended_with(outcome),
            };
        }
        let id = match id {
            Some(id) => id,
            None => self
                .inner
                .messages
                .reply_conversation(owner, reply)
                .await?
                .ok_or(Error::MessageNotFound)?,
        };
        let stored = self
            .inner
            .messages
            .interrupt_reply(owner, id, reply)
            .await?
            .ok_or(Error::MessageNotFound)?;
        // Stopped here, or finished before: either way, what the devices should show.
        self.inner
            .events
            .publish(owner, Change::MessageUpdated(stored.clone()));
        Ok(stored)
    }

    async fn interrupt_stale_replies(&self) -> Result<u64, Error> {
        let stale_after = self.inner.replies.streaming.stale_after;
        let silent_since = self.inner.clock.now().saturating_sub(stale_after);
        let interrupted = self
            .inner
            .messages
            .interrupt_stale_replies(silent_since)
            .await?;
        let count = u64::try_from(interrupted.len()).unwrap_or(u64::MAX);
        for (owner, message) in interrupted {
            self.inner
                .events
                .publish(owner, Change::MessageUpdated(message));
        }
        Ok(count)
    }

    async fn finish_replies(&self, grace: Duration) {
        let inner = &self.inner;
        inner.generations.close();
        let timer = inner.background.timer.as_ref();
        if drained(&inner.generations, timer, grace).await {
            return;
        }
        let left = inner.generations.count();
        tracing::warn!(
            left,
            "stopping the replies still being written; they are kept as interrupted"
        );
        inner.generations.stop_all();
        // Storing what each has is a write or two; this bounds a database that hangs.
        drained(&inner.generations, timer, Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests;
