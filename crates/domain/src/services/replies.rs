//! Replies being written: this process's registry of them, and how readers follow
//! one, here (from memory) or from another process (from the stored checkpoints).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;

use crate::ports::{MessageRepository, Timer};
use crate::{
    ConversationId, Delta, Message, MessageId, MessageStatus, ReplyEvent, ReplyFailure, ReplyFeed,
    ReplySnapshot, ReplyText, UserId,
};

/// How replies are written and followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// How soon text that came is stored, at the latest, while text arrives: a reader
    /// in another process sees it then.
    pub checkpoint_every: Duration,
    /// How long a streaming reply may go without a sign of life from its writer before
    /// any process marks it interrupted (its writer died). Writers give a sign three
    /// times as often.
    pub stale_after: Duration,
    /// How often a reader of a reply written by another process looks at the stored
    /// text.
    pub follow_every: Duration,
    /// How often a writer waiting for text looks whether its reply was stopped from
    /// another process: the bot's request is cancelled that soon.
    pub probe_every: Duration,
}

impl StreamSettings {
    /// Unless configured otherwise: checkpoints within 200 ms and a look every 100 ms
    /// keep a reader elsewhere within about 300 ms of the writer; a stop from
    /// elsewhere reaches a waiting writer within 500 ms; dead writers are found after
    /// 30 s.
    pub const DEFAULT: Self = Self {
        checkpoint_every: Duration::from_millis(200),
        stale_after: Duration::from_secs(30),
        follow_every: Duration::from_millis(100),
        probe_every: Duration::from_millis(500),
    };

    /// How often a writer gives a sign of life when no text comes.
    pub fn heartbeat_every(&self) -> Duration {
        self.stale_after / 3
    }

    /// How long a writer with nothing new to store waits before it next looks, when
    /// it last wrote `since` ago: until its next look for a stop, or its heartbeat
    /// if that comes first.
    pub(crate) fn idle_wait(&self, since: Duration) -> Duration {
        self.probe_every
            .min(self.heartbeat_every().saturating_sub(since))
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The replies this process is writing, by message id.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    running: Mutex<HashMap<MessageId, Arc<Generation>>>,
    closing: AtomicBool,
}

impl Generations {
    /// Registers a reply about to be written; `None` once the process is shutting
    /// down.
    pub(crate) fn register(&self, owner: UserId, reply: Message) -> Option<Arc<Generation>> {
        if self.is_closing() {
            return None;
        }
        let generation = Arc::new(Generation {
            owner,
            reply: reply.clone(),
            state: Mutex::new(State::default()),
        });
        lock(&self.running).insert(reply.id, Arc::clone(&generation));
        Some(generation)
    }

    /// The reply `id` of `owner`'s conversation `conversation`, if this process
    /// writes it.
    pub(crate) fn find(
        &self,
        owner: UserId,
        conversation: ConversationId,
        id: MessageId,
    ) -> Option<Arc<Generation>> {
        self.find_any(owner, id)
            .filter(|generation| generation.reply.conversation_id == conversation)
    }

    /// The reply `id` of `owner`, in whichever conversation, if this process writes
    /// it.
    pub(crate) fn find_any(&self, owner: UserId, id: MessageId) -> Option<Arc<Generation>> {
        lock(&self.running)
            .get(&id)
            .filter(|generation| generation.owner == owner)
            .cloned()
    }

    /// A reply of `owner` in `conversation` that this process has ended but whose
    /// end is not stored yet.
    pub(crate) fn ending_in(
        &self,
        owner: UserId,
        conversation: ConversationId,
    ) -> Option<Arc<Generation>> {
        lock(&self.running)
            .values()
            .find(|generation| {
                generation.owner == owner
                    && generation.reply.conversation_id == conversation
                    && lock(&generation.state).outcome.is_some()
            })
            .cloned()
    }

    pub(crate) fn remove(&self, id: MessageId) {
        lock(&self.running).remove(&id);
    }

    /// Whether new replies are refused.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Refuses new replies from now on.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub(crate) fn count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Asks every reply still being written to stop.
    pub(crate) fn stop_all(&self) {
        for generation in lock(&self.running).values() {
            generation.request_stop();
        }
    }
}

/// One reply being written in this process: its text so far, its outcome once it has
/// one, and who waits for either.
#[derive(Debug)]
pub(crate) struct Generation {
    owner: UserId,
    reply: Message,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    text: ReplyText,
    outcome: Option<ReplyEvent>,
    closed: bool,
    stop_requested: bool,
    writer: Option<Waker>,
    readers: Vec<Waker>,
}

impl Generation {
    /// The reply as created.
    pub(crate) fn reply(&self) -> &Message {
        &self.reply
    }

    /// Adds a piece of text and tells the readers.
    /// Adds a piece of text, tells the readers, and returns the deltas it made.
    pub(crate) fn push(&self, piece: &str) -> Vec<Delta> {
        self.change(|state| {
            let added = state.text.push(piece);
            let last = state.text.deltas();
            (last - added + 1..=last)
                .filter_map(|seq| {
                    Some(Delta {
                        message_id: self.reply.id,
                        seq,
                        text: state.text.delta(seq)?.to_owned(),
                    })
                })
                .collect()
        })
    }

    /// Applies `change` to the state, then wakes the readers to look again.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let (changed, readers) = {
            let mut state = lock(&self.state);
            let changed = change(&mut state);
            (changed, std::mem::take(&mut state.readers))
        };
        readers.into_iter().for_each(Waker::wake);
        changed
    }

    /// The text so far.
    pub(crate) fn text(&self) -> ReplyText {
        lock(&self.state).text.clone()
    }

    /// How many deltas have come.
    pub(crate) fn deltas(&self) -> u64 {
        lock(&self.state).text.deltas()
    }

    /// Ends the reply with `outcome` (stored already) and tells the readers.
    pub(crate) fn finish(&self, outcome: ReplyEvent) {
        self.change(|state| state.outcome = Some(outcome));
    }

    /// Tells the readers `outcome` now, unless they have one, while the writer goes on
    /// (to store the reply's end).
    pub(crate) fn tell(&self, outcome: ReplyEvent) {
        self.change(|state| {
            state.outcome.get_or_insert(outcome);
        });
    }

    /// Marks the writer gone, with `outcome` if it gave none, and tells the readers.
    pub(crate) fn close(&self, outcome: ReplyEvent) {
        self.change(|state| {
            state.outcome.get_or_insert(outcome);
            state.closed = true;
        });
    }

    /// Completes once the writer is gone (after the outcome, and after naming the
    /// conversation).
    pub(crate) async fn closed(&self) {
        std::future::poll_fn(|cx| {
            let mut state = lock(&self.state);
            if state.closed {
                return Poll::Ready(());
            }
            if !state
                .readers
                .iter()
                .any(|reader| reader.will_wake(cx.waker()))
            {
                state.readers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    /// Asks the writer to stop.
    pub(crate) fn request_stop(&self) {
        let writer = {
            let mut state = lock(&self.state);
            state.stop_requested = true;
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Whether a stop was asked for; if not, the writer is woken when one is.
    pub(crate) fn poll_stop(&self, cx: &Context<'_>) -> bool {
        let mut state = lock(&self.state);
        if !state.stop_requested {
            state.writer = Some(cx.waker().clone());
        }
        state.stop_requested
    }

    /// The events for a reader: from the start (with the reply as created) when
    /// `after` is `None`, else those after delta `after`.
    pub(crate) fn feed(self: &Arc<Self>, after: Option<u64>) -> ReplyFeed {
        Box::pin(LocalFeed {
            generation: Arc::clone(self),
            started: after.is_none().then(|| self.reply.clone()),
            next: after.unwrap_or(0).saturating_add(1),
            ended: false,
        })
    }
}

/// A reader of a reply this process writes. It keeps only its place: however slow
/// it reads, it costs no memory beyond the reply's own text, and never holds up the
/// writer or the other readers.
struct LocalFeed {
    generation: Arc<Generation>,
    started: Option<Message>,
    next: u64,
    ended: bool,
}

impl Stream for LocalFeed {
    type Item = ReplyEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReplyEvent>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(reply) = this.started.take() {
            return Poll::Ready(Some(ReplyEvent::Started(reply)));
        }
        let mut state = lock(&this.generation.state);
        if let Some(text) = state.text.delta(this.next) {
            let delta = Delta {
                message_id: this.generation.reply.id,
                seq: this.next,
                text: text.to_owned(),
            };
            this.next = this.next.saturating_add(1);
            return Poll::Ready(Some(ReplyEvent::Delta(delta)));
        }
        if let Some(outcome) = &state.outcome {
            this.ended = true;
            return Poll::Ready(Some(outcome.clone()));
        }
        if !state
            .readers
            .iter()
            .any(|reader| reader.will_wake(cx.waker()))
        {
            state.readers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The event that ends a stored, finished reply.
pub(crate) fn outcome_of(message: Message) -> ReplyEvent {
    match message.status {
        MessageStatus::Failed => ReplyEvent::Failed {
            failure: ReplyFailure::BrokeOff,
            message: Some(message),
        },
        _ => ReplyEvent::Done(message),
    }
}

/// Follows a reply another process writes (or wrote), from its stored checkpoints.
pub(crate) struct StoredFollower<M> {
    pub(crate) messages: Arc<M>,
    pub(crate) timer: Arc<dyn Timer>,
    pub(crate) every: Duration,
    pub(crate) owner: UserId,
}

impl<M: MessageRepository + 'static> StoredFollower<M> {
    /// The events of the reply `snapshot` shows, after delta `after` (from the start
    /// when `None`): a finished reply's outcome at once; for one still streaming, its
    /// deltas as checkpoints bring them, then its outcome, with the rest of its text
    /// as one last delta.
    pub(crate) fn feed(self, snapshot: ReplySnapshot, after: Option<u64>) -> ReplyFeed {
        let ReplySnapshot { message, ends } = snapshot;
        if message.status != MessageStatus::Streaming {
            return Box::pin(futures_util::stream::iter([outcome_of(message)]));
        }
        let started = after.is_none().then(|| Message {
            text: String::new(),
            ..message.clone()
        });
        let text = ReplyText::from_parts(message.text.clone(), ends).unwrap_or_default();
        let following = Following {
            follower: self,
            message,
            text,
            sent: after.unwrap_or(0),
            started,
            last: None,
        };
        let events = futures_util::stream::unfold(Some(following), |following| async move {
            let mut following = following?;
            let event = following.next_event().await;
            let more = !matches!(event, ReplyEvent::Done(_) | ReplyEvent::Failed { .. });
            Some((event, more.then_some(following)))
        });
        // Fused: a reader may poll once more after the end.
        Box::pin(futures_util::StreamExt::fuse(events))
    }
}

/// Where a reader of a stored reply is.
struct Following<M> {
    follower: StoredFollower<M>,
    message: Message,
    text: ReplyText,
    sent: u64,
    started: Option<Message>,
    last: Option<ReplyEvent>,
}

impl<M: MessageRepository> Following<M> {
    async fn next_event(&mut self) -> ReplyEvent {
        if let Some(started) = self.started.take() {
            return ReplyEvent::Started(started);
        }
        loop {
            if let Some(last) = self.last.take() {
                return last;
            }
            if let Some(text) = self.text.delta(self.sent.saturating_add(1)) {
                self.sent += 1;
                return ReplyEvent::Delta(Delta {
                    message_id: self.message.id,
                    seq: self.sent,
                    text: text.to_owned(),
                });
            }
            self.follower.timer.sleep(self.follower.every).await;
            let found = self
                .follower
                .messages
                .find_reply(
                    self.follower.owner,
                    self.message.conversation_id,
                    self.message.id,
                )
                .await;
            match found {
                Ok(Some(snapshot)) if snapshot.message.status == MessageStatus::Streaming => {
                    if let Some(text) = ReplyText::from_parts(snapshot.message.text, snapshot.ends)
                    {
                        self.text = text;
                    }
                }
                Ok(Some(snapshot)) => return self.finished(snapshot.message),
                Ok(None) => {
                    return ReplyEvent::Failed {
                        failure: ReplyFailure::Gone,
                        message: None,
                    };
                }
                // The database may be back at the next look; the reader decides how
                // long to wait.
                Err(error) => tracing::warn!(%error, "could not read a reply being followed"),
            }
        }
    }

    /// The reply is finished: what the reader has not seen of its final text, as one
    /// last delta, then its outcome. A reader ahead of the checkpoints it saw (it had
    /// deltas live from the writer) gets the outcome alone: it carries the whole text.
    fn finished(&mut self, message: Message) -> ReplyEvent {
        let seen = (self.sent <= self.text.deltas())
            .then(|| self.text.as_str().len() - self.text.after(self.sent).len());
        let rest = seen
            .and_then(|seen| message.text.get(seen..))
            .filter(|rest| !rest.is_empty())
            .map(str::to_owned);
        let outcome = outcome_of(message);
        match rest {
            Some(text) => {
                self.sent = self.sent.saturating_add(1);
                self.last = Some(outcome);
                ReplyEvent::Delta(Delta {
                    message_id: self.message.id,
                    seq: self.sent,
                    text,
                })
            }
            None => outcome,
        }
    }
}

/// Waits `every` at a time until no reply is being written or `within` has passed;
/// `true` when none is left.
pub(crate) async fn drained(
    generations: &Generations,
    timer: &dyn Timer,
    within: Duration,
) -> bool {
    let every = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while generations.count() > 0 {
        if waited >= within {
            return false;
        }
        timer.sleep(every).await;
        waited += every;
    }
    true
}

/// A value handed once from one task to another: the giver may outlive the taker,
/// and a giver dropped without giving leaves the taker with `None`.
pub(crate) fn handoff<T>() -> (Giver<T>, Taker<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        gone: false,
        taker: None,
    }));
    (Giver(Arc::clone(&slot)), Taker(slot))
}

struct Slot<T> {
    value: Option<T>,
    gone: bool,
    taker: Option<Waker>,
}

/// The giving side of a [`handoff`].
pub(crate) struct Giver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Giver<T> {
    /// Hands `value` over.
    pub(crate) fn give(self, value: T) {
        lock(&self.0).value = Some(value);
        // Dropping wakes the taker.
    }
}

impl<T> Drop for Giver<T> {
    fn drop(&mut self) {
        let taker = {
            let mut slot = lock(&self.0);
            slot.gone = true;
            slot.taker.take()
        };
        if let Some(taker) = taker {
            taker.wake();
        }
    }
}

/// The taking side of a [`handoff`]: what was given, or `None`.
pub(crate) struct Taker<T>(Arc<Mutex<Slot<T>>>);

impl<T> std::future::Future for Taker<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = lock(&self.0);
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Some(value));
        }
        if slot.gone {
            return Poll::Ready(None);
        }
        slot.taker = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use futures_util::{FutureExt, StreamExt};

    use super::*;
    use crate::{Sender, Timestamp};

    const OWNER: UserId = UserId::new(1);
    const CONVERSATION: ConversationId = ConversationId::new(10);
    const REPLY: MessageId = MessageId::new(101);

    fn reply(text: &str, status: MessageStatus) -> Message {
        Message {
            id: REPLY,
            conversation_id: CONVERSATION,
            sender: Sender::Bot,
            text: text.to_owned(),
            status,
            created_at: Timestamp::from_unix_millis(1_795_586_834_123).unwrap(),
        }
    }

    fn generation() -> Arc<Generation> {
        Generations::default()
            .register(OWNER, reply("", MessageStatus::Streaming))
            .unwrap()
    }

    /// The event `feed` has now, if any (`Some(None)` at its end).
    fn next_now(feed: &mut ReplyFeed) -> Option<Option<ReplyEvent>> {
        feed.next().now_or_never()
    }

    /// The next event of `feed`, which must have one now, as `(seq, text)` of a delta.
    fn next_delta(feed: &mut ReplyFeed) -> (u64, String) {
        match next_now(feed) {
            Some(Some(ReplyEvent::Delta(delta))) => {
                assert_eq!(delta.message_id, REPLY);
                (delta.seq, delta.text)
            }
            other => panic!("expected a delta, got {other:?}"),
        }
    }

    fn pieces(count: u64) -> Vec<String> {
        (1..=count).map(|n| format!("<{n}>")).collect()
    }

    #[test]
    fn a_reader_resuming_after_a_delta_gets_the_ones_after_it_without_gap_or_repeat() {
        let generation = generation();
        for piece in ["a", "b", "c", "d"] {
            generation.push(piece);
        }
        let mut feed = generation.feed(Some(2));
        assert_eq!(next_delta(&mut feed), (3, "c".to_owned()));
        assert_eq!(next_delta(&mut feed), (4, "d".to_owned()));
        assert!(next_now(&mut feed).is_none(), "waits for more");

        generation.push("e");
        assert_eq!(next_delta(&mut feed), (5, "e".to_owned()));
        generation.finish(ReplyEvent::Done(reply("abcde", MessageStatus::Complete)));
        assert!(matches!(
            next_now(&mut feed),
            Some(Some(ReplyEvent::Done(message))) if message.text == "abcde"
        ));
        assert!(matches!(next_now(&mut feed), Some(None)), "then it ends");
        assert!(matches!(next_now(&mut feed), Some(None)), "and stays ended");
    }

    #[test]
    fn a_reader_from_the_start_gets_the_reply_as_created_then_every_delta() {
        let generation = generation();
        generation.push("a");
        let mut feed = generation.feed(None);
        assert!(matches!(
            next_now(&mut feed),
            Some(Some(ReplyEvent::Started(message)))
                if message == reply("", MessageStatus::Streaming)
        ));
        assert_eq!(next_delta(&mut feed), (1, "a".to_owned()));
        // After delta 0: every delta, without the reply as created.
        let mut feed = generation.feed(Some(0));
        assert_eq!(next_delta(&mut feed), (1, "a".to_owned()));
    }

    #[test]
    fn a_reader_ahead_of_the_text_waits_for_the_outcome_alone() {
        let generation = generation();
        generation.push("a");
        let mut feed = generation.feed(Some(u64::MAX));
        assert!(next_now(&mut feed).is_none());
        generation.push("b");
        assert!(next_now(&mut feed).is_none());
        generation.finish(ReplyEvent::Done(reply("ab", MessageStatus::Complete)));
        assert!(matches!(
            next_now(&mut feed),
            Some(Some(ReplyEvent::Done(_)))
        ));
        assert!(matches!(next_now(&mut feed), Some(None)));
    }

    #[test]
    fn a_slow_reader_holds_up_nobody_and_still_gets_everything_in_order() {
        let generation = generation();
        let mut slow = generation.feed(Some(0));
        let mut other = generation.feed(Some(0));
        let sent = pieces(1000);
        // The writer pushes everything while nobody reads; the other reader keeps up.
        for (piece, seq) in sent.iter().zip(1..) {
            generation.push(piece);
            assert_eq!(next_delta(&mut other), (seq, piece.clone()));
        }
        generation.finish(ReplyEvent::Done(reply(
            &sent.concat(),
            MessageStatus::Complete,
        )));

        let mut received = Vec::new();
        while let Some(Some(event)) = next_now(&mut slow) {
            received.push(event);
        }
        assert_eq!(received.len(), 1001, "every delta, then the outcome");
        for (event, (piece, seq)) in received.iter().zip(sent.iter().zip(1..)) {
            assert!(
                matches!(event, ReplyEvent::Delta(delta) if delta.seq == seq && delta.text == *piece),
                "{event:?}"
            );
        }
        assert!(matches!(received.last(), Some(ReplyEvent::Done(_))));
        assert!(matches!(next_now(&mut slow), Some(None)));
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_waiting_reader_is_woken_by_more_text_and_by_the_outcome() {
        let generation = generation();
        let mut feed = generation.feed(None);
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let woken = || wakes.0.load(Ordering::SeqCst);

        assert!(matches!(
            feed.as_mut().poll_next(&mut cx),
            Poll::Ready(Some(ReplyEvent::Started(_)))
        ));
        assert!(feed.as_mut().poll_next(&mut cx).is_pending());
        // Polled again while waiting, it is still woken once.
        assert!(feed.as_mut().poll_next(&mut cx).is_pending());
        generation.push("a");
        assert_eq!(woken(), 1);
        assert!(matches!(
            feed.as_mut().poll_next(&mut cx),
            Poll::Ready(Some(ReplyEvent::Delta(_)))
        ));
        assert!(feed.as_mut().poll_next(&mut cx).is_pending());
        generation.finish(ReplyEvent::Done(reply("a", MessageStatus::Complete)));
        assert_eq!(woken(), 2);
        assert!(matches!(
            feed.as_mut().poll_next(&mut cx),
            Poll::Ready(Some(ReplyEvent::Done(_)))
        ));
    }

    #[test]
    fn a_stop_wakes_the_writer_and_stays_requested() {
        let generation = generation();
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let cx = Context::from_waker(&waker);
        assert!(!generation.poll_stop(&cx));
        generation.request_stop();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(generation.poll_stop(&cx));
        assert!(generation.poll_stop(&cx));
    }

    #[test]
    fn the_registry_finds_a_reply_only_for_its_owner_and_conversation_and_closes() {
        let generations = Generations::default();
        let registered = generations
            .register(OWNER, reply("", MessageStatus::Streaming))
            .unwrap();
        assert!(generations.find(OWNER, CONVERSATION, REPLY).is_some());
        assert!(
            generations
                .find(UserId::new(2), CONVERSATION, REPLY)
                .is_none()
        );
        assert!(
            generations
                .find(OWNER, ConversationId::new(11), REPLY)
                .is_none()
        );
        assert!(
            generations
                .find(OWNER, CONVERSATION, MessageId::new(102))
                .is_none()
        );
        assert_eq!(generations.count(), 1);

        generations.close();
        assert!(
            generations
                .register(OWNER, reply("", MessageStatus::Streaming))
                .is_none()
        );
        let cx = Context::from_waker(Waker::noop());
        assert!(!registered.poll_stop(&cx));
        generations.stop_all();
        assert!(registered.poll_stop(&cx));
        generations.remove(REPLY);
        assert_eq!(generations.count(), 0);
    }
}
