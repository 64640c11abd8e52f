//! Events across instances over PostgreSQL LISTEN/NOTIFY: two `PgEvents` on one
//! database, each with its own hub, stand for two instances.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chatbot_domain::ports::{
    ConversationRepository, EventPublisher, MessageRepository, UserRepository,
};
use chatbot_domain::services::{Delivery, EventHub, HubSettings, Subscription};
use chatbot_domain::use_cases::Realtime;
use chatbot_domain::{
    Change, ConversationId, ConversationName, Delta, DisplayName, Event, MessageId, MessageStatus,
    NewConversation, NewMessage, NewUser, PasswordHash, Sender, Timestamp, User, UserId, Username,
};
use chatbot_persistence::testing::TestDb;
use chatbot_persistence::{DatabaseUrl, EventOptions, PgEvents};
use futures_core::Stream;

/// How long an event may take before a test gives up on it: generous, for a loaded
/// machine; nothing waits this long when all is well.
const PATIENCE: Duration = Duration::from_secs(10);

/// One instance: its hub, its publisher, and the name its connections carry.
struct Instance {
    hub: EventHub,
    events: PgEvents,
    name: String,
}

fn instance(test: &TestDb) -> Instance {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "events-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let hub = EventHub::new(HubSettings::DEFAULT);
    let options = EventOptions {
        application_name: name.clone(),
        ..EventOptions::default()
    };
    let events = PgEvents::start_with(
        &DatabaseUrl::parse(test.url()).unwrap(),
        hub.clone(),
        options,
    )
    .unwrap();
    Instance { hub, events, name }
}

fn delta(owner: i64, seq: u64, text: &str) -> Event {
    Event::new(
        UserId::new(owner),
        Change::MessageDelta {
            conversation_id: ConversationId::new(3),
            delta: Delta {
                message_id: MessageId::new(7),
                seq,
                text: text.to_owned(),
            },
        },
    )
}

/// The next delivery, if one comes within `within`.
async fn next(subscription: &mut Subscription, within: Duration) -> Option<Delivery> {
    let poll = std::future::poll_fn(|cx| Pin::new(&mut *subscription).poll_next(cx));
    tokio::time::timeout(within, poll).await.ok().flatten()
}

/// The next event, which must come within [`PATIENCE`].
async fn next_event(subscription: &mut Subscription) -> Event {
    match next(subscription, PATIENCE).await {
        Some(Delivery::Event(event)) => event,
        other => panic!("expected an event within {PATIENCE:?}, got {other:?}"),
    }
}

/// Whether nothing is waiting: what was published before the last event that came
/// has been delivered by then, since one listener delivers in order.
async fn nothing_waiting(subscription: &mut Subscription) -> bool {
    next(subscription, Duration::from_millis(50))
        .await
        .is_none()
}

fn seq_of(event: &Event) -> u64 {
    match &event.change {
        Change::MessageDelta { delta, .. } => delta.seq,
        other => panic!("expected a delta, got {other:?}"),
    }
}

/// How many backends carry `application_name`.
fn backends(test: &TestDb, application_name: &str) -> i64 {
    test.count(&format!(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE application_name = '{application_name}'"
    ))
}

/// Ends the backends that carry `application_name`, as an administrator or a
/// restart would.
fn terminate(test: &TestDb, application_name: &str) {
    assert_eq!(backends(test, application_name), 1, "{application_name}");
    test.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{application_name}'"
    ));
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn an_event_reaches_its_owners_connections_on_every_instance_in_publish_order_and_no_one_elses()
 {
    let test = TestDb::postgres();
    let a = instance(&test);
    let b = instance(&test);
    assert_eq!(
        a.events.channel(),
        b.events.channel(),
        "one database, one channel"
    );
    assert!(
        a.events.channel().starts_with("chatbot_events:test_"),
        "{}",
        a.events.channel()
    );
    let mut owners = vec![
        a.hub.subscribe(UserId::new(1)).unwrap(),
        b.hub.subscribe(UserId::new(1)).unwrap(),
        b.hub.subscribe(UserId::new(1)).unwrap(),
    ];
    let mut others = [
        a.hub.subscribe(UserId::new(2)).unwrap(),
        b.hub.subscribe(UserId::new(2)).unwrap(),
    ];

    // The 100th is longer than one payload holds, however it is escaped: it travels
    // in parts and arrives whole, in its place.
    let long = "\u{1}".repeat(3_000);
    let text = |seq: u64| {
        if seq == 100 {
            long.clone()
        } else {
            format!("piece {seq} \"ü\"\n")
        }
    };
    for seq in 1..=200 {
        a.events.publish(delta(1, seq, &text(seq)));
    }
    for subscription in &mut owners {
        for seq in 1..=200 {
            let event = next_event(subscription).await;
            assert_eq!(event, delta(1, seq, &text(seq)), "in publish order");
        }
    }
    for subscription in owners.iter_mut().chain(&mut others) {
        assert!(
            nothing_waiting(subscription).await,
            "each event once, to its owner only"
        );
    }

    // Published on B, it reaches A too; and only user 2.
    b.events
        .publish(Event::new(UserId::new(2), Change::SessionsEnded));
    for subscription in &mut others {
        assert_eq!(
            next_event(subscription).await,
            Event::new(UserId::new(2), Change::SessionsEnded)
        );
    }
    for subscription in &mut owners {
        assert!(nothing_waiting(subscription).await);
    }

    // The delay of one event from A's publish to B's connection: shown, not asserted.
    // Back to back, as a reply's deltas come; then each after a quiet spell of a
    // quarter second or so (varied, so as not to keep one phase with the polling).
    for (quiet, seqs) in [
        (Duration::ZERO, 1_000..1_030),
        (Duration::from_millis(250), 2_000..2_020),
    ] {
        let mut delays = Vec::new();
        for seq in seqs {
            if !quiet.is_zero() {
                tokio::time::sleep(quiet + Duration::from_micros(seq * 3_700 % 10_000)).await;
            }
            let published = Instant::now();
            a.events.publish(delta(1, seq, "x"));
            let event = next_event(&mut owners[1]).await;
            delays.push(published.elapsed());
            assert_eq!(seq_of(&event), seq);
        }
        delays.sort();
        println!(
            "A -> B delivery of one event, {quiet:?} after the last, over {} tries: \
             min {:?}, median {:?}, max {:?}",
            delays.len(),
            delays[0],
            delays[delays.len() / 2],
            delays[delays.len() - 1]
        );
    }
}

async fn user(test: &TestDb, name: &str) -> User {
    test.db
        .insert_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            email: None,
            password_hash: PasswordHash::new(format!("hash of {name}")),
            created_at: Timestamp::from_unix_millis(1_795_586_834_000).unwrap(),
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn a_message_too_long_for_a_payload_arrives_whole_read_back_for_its_owner_only() {
    let test = TestDb::postgres();
    let a = instance(&test);
    let b = instance(&test);
    let alice = user(&test, "alice").await;
    let bob = user(&test, "bob").await;
    let chat = test
        .db
        .insert_conversation(
            NewConversation {
                owner: alice.id,
                name: ConversationName::default(),
                created_at: Timestamp::from_unix_millis(1_795_586_834_000).unwrap(),
            },
            u32::MAX,
        )
        .await
        .unwrap()
        .expect("below the most conversations");
    let text: String = "ü\"\n".chars().cycle().take(16_000).collect();
    let begun = test
        .db
        .begin_exchange(
            alice.id,
            chat.id,
            NewMessage {
                sender: Sender::User,
                text: text.clone(),
                status: MessageStatus::Complete,
                created_at: Timestamp::from_unix_millis(1_795_586_835_000).unwrap(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let mut alices = b.hub.subscribe(alice.id).unwrap();
    let mut bobs = b.hub.subscribe(bob.id).unwrap();

    // A reference to Alice's message in an event of Bob's: Bob never gets it.
    a.events.publish(Event::new(
        bob.id,
        Change::MessageCreated(begun.user_message.clone()),
    ));
    let created = Event::new(alice.id, Change::MessageCreated(begun.user_message.clone()));
    a.events.publish(created.clone());
    let arrived = next_event(&mut alices).await;
    assert_eq!(arrived, created);
    match &arrived.change {
        Change::MessageCreated(message) => assert_eq!(message.text.chars().count(), 16_000),
        other => panic!("{other:?}"),
    }
    a.events.publish(Event::new(bob.id, Change::SessionsEnded));
    assert_eq!(
        next_event(&mut bobs).await,
        Event::new(bob.id, Change::SessionsEnded),
        "the foreign message was not delivered before it"
    );

    // A long reply as it ends, likewise; a message deleted meanwhile is skipped.
    let finished = test
        .db
        .finish_reply(begun.reply.id, text.clone(), MessageStatus::Complete)
        .await
        .unwrap()
        .unwrap();
    let updated = Event::new(alice.id, Change::MessageUpdated(finished));
    a.events.publish(updated.clone());
    assert_eq!(next_event(&mut alices).await, updated);
    assert!(
        test.db
            .delete_conversation(alice.id, chat.id)
            .await
            .unwrap()
    );
    a.events.publish(updated);
    let deleted = Event::new(alice.id, Change::ConversationDeleted(chat.id));
    a.events.publish(deleted.clone());
    assert_eq!(
        next_event(&mut alices).await,
        deleted,
        "the gone message was skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn events_keep_arriving_after_the_listening_and_the_sending_connection_are_killed() {
    let test = TestDb::postgres();
    let a = instance(&test);
    let b = instance(&test);
    let mut on_b = b.hub.subscribe(UserId::new(1)).unwrap();
    a.events.publish(delta(1, 1, "before"));
    assert_eq!(seq_of(&next_event(&mut on_b).await), 1);

    // B's listener loses its connection. What is sent until it listens again does
    // not reach it, so once it does, B's connections are told they missed events;
    // a new one hears what is sent after, in order.
    let listener = format!("{}-listen", b.name);
    terminate(&test, &listener);
    let killed = Instant::now();
    let mut seq = 1;
    let mut told = false;
    let first = loop {
        assert!(
            killed.elapsed() < PATIENCE,
            "B hears events again within {PATIENCE:?}"
        );
        seq += 1;
        a.events.publish(delta(1, seq, "probe"));
        match next(&mut on_b, Duration::from_millis(100)).await {
            Some(Delivery::Event(event)) if told => break seq_of(&event),
            Some(Delivery::Overflowed) => {
                told = true;
                on_b = b.hub.subscribe(UserId::new(1)).unwrap();
            }
            Some(Delivery::Event(_)) | None => {}
        }
    };
    println!(
        "B's listener heard events again {:?} after its backend was killed",
        killed.elapsed()
    );
    for later in 1_000..1_050 {
        a.events.publish(delta(1, later, "after"));
    }
    let mut last = first;
    while last < 1_049 {
        let now = seq_of(&next_event(&mut on_b).await);
        assert!(now > last, "in order: {now} after {last}");
        last = now;
    }
    assert_eq!(backends(&test, &listener), 1, "listening again, once");

    // A's sender loses its connection: what is published meanwhile waits and is sent
    // on the next one.
    // (Once its backend is gone, so that the first attempt surely fails.)
    let sender = format!("{}-notify", a.name);
    terminate(&test, &sender);
    until("A's sending backend gone", || backends(&test, &sender) == 0).await;
    a.events.publish(delta(1, 2_000, "queued"));
    a.events.publish(delta(1, 2_001, "queued"));
    assert_eq!(seq_of(&next_event(&mut on_b).await), 2_000);
    assert_eq!(seq_of(&next_event(&mut on_b).await), 2_001);
    assert_eq!(backends(&test, &sender), 1, "sent on a new connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn dropping_the_last_handle_sends_what_is_queued_and_closes_both_connections() {
    let test = TestDb::postgres();
    let a = instance(&test);
    let b = instance(&test);
    let mut on_b = b.hub.subscribe(UserId::new(1)).unwrap();
    let clone = a.events.clone();
    for seq in 1..=50 {
        clone.publish(delta(1, seq, "last words"));
    }
    drop(clone);
    let name = a.name.clone();
    drop(a);
    for seq in 1..=50 {
        assert_eq!(seq_of(&next_event(&mut on_b).await), seq);
    }
    until("A's connections closed", || {
        backends(&test, &format!("{name}-listen")) + backends(&test, &format!("{name}-notify")) == 0
    })
    .await;
    assert_eq!(backends(&test, &format!("{}-listen", b.name)), 1);
}
