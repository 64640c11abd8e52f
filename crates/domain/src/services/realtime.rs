//! Real time: each user's events, delivered to that user's open connections in this
//! process, each through a bounded inbox of its own.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use crate::ports::EventPublisher;
use crate::use_cases::Realtime;
use crate::{Error, Event, UserId};

/// How many connections a user may hold, and how far each may fall behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubSettings {
    /// Connections per user in this process; the next is refused.
    pub max_per_user: usize,
    /// Events waiting for one connection; one more and that connection is dropped as
    /// too slow (it reloads through the API), never the others held up.
    pub inbox_capacity: usize,
}

impl HubSettings {
    /// Unless configured otherwise: 10 connections per user (SPEC §10), each up to
    /// 1,024 events behind (a long reply's deltas while a phone is briefly stalled).
    pub const DEFAULT: Self = Self {
        max_per_user: 10,
        inbox_capacity: 1_024,
    };
}

/// The connections of this process, by user, and the events on their way to each.
///
/// As an [`EventPublisher`], it delivers in this process only (a single instance, or
/// SQLite); across instances an adapter publishes through the database and hands
/// what arrives to [`deliver`](Self::deliver). Clones share one hub.
#[derive(Debug, Clone)]
pub struct EventHub {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    settings: HubSettings,
    users: Mutex<HashMap<UserId, Vec<Arc<Inbox>>>>,
}

#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Debug, Default)]
struct InboxState {
    events: VecDeque<Event>,
    overflowed: bool,
    reader: Option<Waker>,
}

impl EventHub {
    /// A hub with no connections yet.
    pub fn new(settings: HubSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                users: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Hands `event` to every connection of its owner in this process, at once: a
    /// connection whose inbox is full is marked too slow instead of waited for.
    pub fn deliver(&self, event: Event) {
        let inboxes = match lock(&self.shared.users).get(&event.owner) {
            Some(inboxes) => inboxes.clone(),
            None => return,
        };
        let capacity = self.shared.settings.inbox_capacity;
        for inbox in inboxes {
            let reader = {
                let mut state = lock(&inbox.state);
                if state.overflowed {
                    continue;
                }
                if state.events.len() >= capacity {
                    state.overflowed = true;
                    state.events.clear();
                } else {
                    state.events.push_back(event.clone());
                }
                state.reader.take()
            };
            if let Some(reader) = reader {
                reader.wake();
            }
        }
    }

    /// Tells every connection in this process that events were lost on their way
    /// (the link between instances broke for a while): each is as if it had fallen
    /// behind, and its client reloads through the API.
    pub fn missed_events(&self) {
        let inboxes: Vec<Arc<Inbox>> = lock(&self.shared.users)
            .values()
            .flatten()
            .cloned()
            .collect();
        for inbox in inboxes {
            let reader = {
                let mut state = lock(&inbox.state);
                state.overflowed = true;
                state.events.clear();
                state.reader.take()
            };
            if let Some(reader) = reader {
                reader.wake();
            }
        }
    }

    /// How many connections `user` holds in this process.
    pub fn connections(&self, user: UserId) -> usize {
        lock(&self.shared.users).get(&user).map_or(0, Vec::len)
    }
}

impl EventPublisher for EventHub {
    fn publish(&self, event: Event) {
        self.deliver(event);
    }
}

impl Realtime for EventHub {
    fn subscribe(&self, user: UserId) -> Result<Subscription, Error> {
        let inbox = Arc::new(Inbox::default());
        {
            let mut users = lock(&self.shared.users);
            let held = users.entry(user).or_default();
            if held.len() >= self.shared.settings.max_per_user {
                return Err(Error::TooManyConnections {
                    most: self.shared.settings.max_per_user,
                });
            }
            held.push(Arc::clone(&inbox));
        }
        Ok(Subscription {
            shared: Arc::clone(&self.shared),
            user,
            inbox,
        })
    }
}

/// What a connection receives: its user's events in order, until it falls too far
/// behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The next event.
    Event(Event),
    /// The connection fell more than its inbox holds behind, or events were lost
    /// between instances; the events it missed are gone, and it should be closed (the
    /// client reloads through the API).
    Overflowed,
}

/// One connection's events. Dropping it ends the connection's place in the hub.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    user: UserId,
    inbox: Arc<Inbox>,
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let mut state = lock(&self.inbox.state);
        if state.overflowed {
            return Poll::Ready(Some(Delivery::Overflowed));
        }
        match state.events.pop_front() {
            Some(event) => Poll::Ready(Some(Delivery::Event(event))),
            None => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut users = lock(&self.shared.users);
        if let Some(held) = users.get_mut(&self.user) {
            held.retain(|inbox| !Arc::ptr_eq(inbox, &self.inbox));
            if held.is_empty() {
                users.remove(&self.user);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;
    use crate::{Change, ConversationId};

    fn deleted(owner: i64, conversation: i64) -> Event {
        Event::new(
            UserId::new(owner),
            Change::ConversationDeleted(ConversationId::new(conversation)),
        )
    }

    fn next(subscription: &mut Subscription) -> Option<Delivery> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(subscription).poll_next(&mut cx) {
            Poll::Ready(delivery) => delivery,
            Poll::Pending => None,
        }
    }

    #[test]
    fn events_reach_every_connection_of_their_owner_in_order_and_no_one_else() {
        let hub = EventHub::new(HubSettings::DEFAULT);
        let mut phone = hub.subscribe(UserId::new(1)).unwrap();
        let mut laptop = hub.subscribe(UserId::new(1)).unwrap();
        let mut other = hub.subscribe(UserId::new(2)).unwrap();
        hub.publish(deleted(1, 10));
        hub.publish(deleted(1, 11));
        for connection in [&mut phone, &mut laptop] {
            assert_eq!(next(connection), Some(Delivery::Event(deleted(1, 10))));
            assert_eq!(next(connection), Some(Delivery::Event(deleted(1, 11))));
            assert_eq!(next(connection), None);
        }
        assert_eq!(next(&mut other), None, "another user's events never arrive");
    }

    #[test]
    fn a_connection_that_falls_behind_is_told_and_holds_no_one_else_up() {
        let hub = EventHub::new(HubSettings {
            max_per_user: 10,
            inbox_capacity: 3,
        });
        let mut slow = hub.subscribe(UserId::new(1)).unwrap();
        let mut quick = hub.subscribe(UserId::new(1)).unwrap();
        for n in 0..4 {
            hub.publish(deleted(1, n));
            assert_eq!(next(&mut quick), Some(Delivery::Event(deleted(1, n))));
        }
        assert_eq!(next(&mut slow), Some(Delivery::Overflowed));
        hub.publish(deleted(1, 9));
        assert_eq!(
            next(&mut slow),
            Some(Delivery::Overflowed),
            "it stays overflowed"
        );
        assert_eq!(next(&mut quick), Some(Delivery::Event(deleted(1, 9))));
    }

    #[test]
    fn events_lost_between_instances_overflow_every_connection() {
        let hub = EventHub::new(HubSettings::DEFAULT);
        let mut alice = hub.subscribe(UserId::new(1)).unwrap();
        let mut bob = hub.subscribe(UserId::new(2)).unwrap();
        hub.missed_events();
        assert_eq!(next(&mut alice), Some(Delivery::Overflowed));
        assert_eq!(next(&mut bob), Some(Delivery::Overflowed));
    }

    #[test]
    fn a_user_holds_at_most_max_per_user_connections_and_a_closed_one_frees_its_place() {
        let hub = EventHub::new(HubSettings {
            max_per_user: 2,
            inbox_capacity: 8,
        });
        let first = hub.subscribe(UserId::new(1)).unwrap();
        let _second = hub.subscribe(UserId::new(1)).unwrap();
        let refused = hub.subscribe(UserId::new(1)).unwrap_err();
        assert!(
            matches!(refused, Error::TooManyConnections { most: 2 }),
            "{refused:?}"
        );
        assert!(hub.subscribe(UserId::new(2)).is_ok(), "per user");
        drop(first);
        assert_eq!(hub.connections(UserId::new(1)), 1);
        assert!(hub.subscribe(UserId::new(1)).is_ok());
    }
}
