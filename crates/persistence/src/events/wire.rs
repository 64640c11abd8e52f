//! Events as NOTIFY payloads: compact JSON under PostgreSQL's 8,000-byte limit.
//!
//! An event whose JSON fits in [`MAX_PAYLOAD_BYTES`] travels whole. A message or
//! conversation that does not (a long text) travels as a [`Reference`] that the
//! receiving instance reads back from the database. A delta never goes by reference
//! (its text is not stored apart from its reply) and is never dropped: the domain cuts
//! deltas to 1 KiB, which fits even escaped six times over, and a larger one is sent
//! in [parts](Part) that the receiver joins again ([`Assembler`]).
//!
//! Every payload carries `"v":1`; a receiver refuses any other version rather than
//! guess at it, so instances of two releases side by side lose each other's events
//! (their clients reload) instead of misreading them.

use std::collections::HashMap;

use chatbot_domain::{
    Change, Conversation, ConversationId, ConversationName, Delta, Event, Message, MessageId,
    Timestamp, UserId,
};
use serde::{Deserialize, Serialize};

/// Most bytes of one payload: PostgreSQL refuses 8,000 and more; the margin is for
/// nothing in particular but costs nothing either.
pub(super) const MAX_PAYLOAD_BYTES: usize = 7_500;

/// Most bytes of delta text in one part. JSON escapes a byte into at most six
/// (`\u001f`), so a part's text takes at most 7,200 bytes encoded, and the rest of
/// the payload (ids, numbers at their longest) well under 300.
const PART_TEXT_BYTES: usize = 1_200;

/// The payload format's version.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    v: u32,
    /// The owner: whose devices may learn of it.
    o: i64,
    #[serde(flatten)]
    change: WireChange,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k")]
enum WireChange {
    #[serde(rename = "message.created")]
    MessageCreated { m: WireMessage },
    #[serde(rename = "message.delta")]
    MessageDelta {
        /// Conversation.
        c: i64,
        /// Message.
        m: i64,
        /// Sequence number.
        s: u64,
        /// Text, or this part of it.
        t: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p: Option<Part>,
    },
    #[serde(rename = "message.updated")]
    MessageUpdated { m: WireMessage },
    #[serde(rename = "conversation.created")]
    ConversationCreated { c: WireConversation },
    #[serde(rename = "conversation.updated")]
    ConversationUpdated { c: WireConversation },
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted { c: i64 },
    #[serde(rename = "sessions.ended")]
    SessionsEnded,
    /// A message or conversation too long to travel: read it back by id.
    #[serde(rename = "ref")]
    Reference {
        of: ReferenceKind,
        /// The message's or the conversation's id.
        id: i64,
        /// The conversation (the conversation itself for a conversation).
        c: i64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct WireMessage {
    id: i64,
    c: i64,
    sender: String,
    text: String,
    status: String,
    /// Milliseconds since the Unix epoch.
    at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireConversation {
    id: i64,
    owner: i64,
    name: String,
    /// Milliseconds since the Unix epoch.
    created: i64,
    /// Milliseconds since the Unix epoch.
    updated: i64,
}

/// Where a delta's part stands among the parts of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Part {
    /// From 0.
    n: u32,
    /// The last part: the delta is whole with it.
    last: bool,
}

/// Which change a [`Reference`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReferenceKind {
    /// [`Change::MessageCreated`].
    MessageCreated,
    /// [`Change::MessageUpdated`].
    MessageUpdated,
    /// [`Change::ConversationCreated`].
    ConversationCreated,
    /// [`Change::ConversationUpdated`].
    ConversationUpdated,
}

/// A change to read back from the database before delivering it: `owner`'s message
/// or conversation `id`, in conversation `conversation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reference {
    pub(super) owner: UserId,
    pub(super) kind: ReferenceKind,
    pub(super) id: i64,
    pub(super) conversation: ConversationId,
}

/// A payload, read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// An event, whole.
    Event(Event),
    /// An event to read back from the database.
    Reference(Reference),
    /// Part of a delta too long for one payload.
    Part(DeltaPart),
}

/// Part of a delta's text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DeltaPart {
    owner: UserId,
    conversation: ConversationId,
    message: MessageId,
    seq: u64,
    text: String,
    part: Part,
}

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum DecodeError {
    /// Not JSON of this format.
    #[error("not an event payload: {0}")]
    Json(#[from] serde_json::Error),
    /// Another version of the format.
    #[error("payload version {0}, this instance reads version {VERSION}")]
    Version(u32),
    /// A field no valid event holds.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The payloads that carry `event`, in order: one, unless it is a delta too long for
/// one. `Err` only if JSON cannot be written, which these types never cause.
pub(super) fn encode(event: &Event) -> Result<Vec<String>, serde_json::Error> {
    let owner = event.owner.get();
    let whole = serde_json::to_string(&Payload {
        v: VERSION,
        o: owner,
        change: wire_change(&event.change),
    })?;
    if whole.len() <= MAX_PAYLOAD_BYTES {
        return Ok(vec![whole]);
    }
    let reference = |of, id: i64, conversation: ConversationId| WireChange::Reference {
        of,
        id,
        c: conversation.get(),
    };
    let change = match &event.change {
        Change::MessageCreated(m) => {
            reference(ReferenceKind::MessageCreated, m.id.get(), m.conversation_id)
        }
        Change::MessageUpdated(m) => {
            reference(ReferenceKind::MessageUpdated, m.id.get(), m.conversation_id)
        }
        Change::ConversationCreated(c) => {
            reference(ReferenceKind::ConversationCreated, c.id.get(), c.id)
        }
        Change::ConversationUpdated(c) => {
            reference(ReferenceKind::ConversationUpdated, c.id.get(), c.id)
        }
        Change::MessageDelta {
            conversation_id,
            delta,
        } => return encode_parts(owner, *conversation_id, delta),
        // Ids only: never near the limit.
        Change::ConversationDeleted(_) | Change::SessionsEnded => return Ok(vec![whole]),
    };
    Ok(vec![serde_json::to_string(&Payload {
        v: VERSION,
        o: owner,
        change,
    })?])
}

/// A delta's text in parts of at most [`PART_TEXT_BYTES`], cut between characters.
fn encode_parts(
    owner: i64,
    conversation: ConversationId,
    delta: &Delta,
) -> Result<Vec<String>, serde_json::Error> {
    let pieces = split_text(&delta.text, PART_TEXT_BYTES);
    let count = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(n, text)| {
            serde_json::to_string(&Payload {
                v: VERSION,
                o: owner,
                change: WireChange::MessageDelta {
                    c: conversation.get(),
                    m: delta.message_id.get(),
                    s: delta.seq,
                    t: text.to_owned(),
                    p: Some(Part {
                        n: u32::try_from(n).unwrap_or(u32::MAX),
                        last: n + 1 == count,
                    }),
                },
            })
        })
        .collect()
}

/// `text` cut into pieces of at most `most` bytes (at least one character each),
/// between characters.
fn split_text(text: &str, most: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = most.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // `most` is smaller than this character: take the character whole.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, after) = rest.split_at(end);
        pieces.push(piece);
        rest = after;
    }
    if pieces.is_empty() {
        pieces.push("");
    }
    pieces
}

fn wire_change(change: &Change) -> WireChange {
    match change {
        Change::MessageCreated(m) => WireChange::MessageCreated { m: wire_message(m) },
        Change::MessageDelta {
            conversation_id,
            delta,
        } => WireChange::MessageDelta {
            c: conversation_id.get(),
            m: delta.message_id.get(),
            s: delta.seq,
            t: delta.text.clone(),
            p: None,
        },
        Change::MessageUpdated(m) => WireChange::MessageUpdated { m: wire_message(m) },
        Change::ConversationCreated(c) => WireChange::ConversationCreated {
            c: wire_conversation(c),
        },
        Change::ConversationUpdated(c) => WireChange::ConversationUpdated {
            c: wire_conversation(c),
        },
        Change::ConversationDeleted(id) => WireChange::ConversationDeleted { c: id.get() },
        Change::SessionsEnded => WireChange::SessionsEnded,
    }
}

fn wire_message(message: &Message) -> WireMessage {
    WireMessage {
        id: message.id.get(),
        c: message.conversation_id.get(),
        sender: message.sender.as_str().to_owned(),
        text: message.text.clone(),
        status: message.status.as_str().to_owned(),
        at: message.created_at.unix_millis(),
    }
}

fn wire_conversation(conversation: &Conversation) -> WireConversation {
    WireConversation {
        id: conversation.id.get(),
        owner: conversation.owner.get(),
        name: conversation.name.as_str().to_owned(),
        created: conversation.created_at.unix_millis(),
        updated: conversation.updated_at.unix_millis(),
    }
}

/// Reads a payload.
pub(super) fn decode(payload: &str) -> Result<Decoded, DecodeError> {
    let payload: Payload = serde_json::from_str(payload)?;
    if payload.v != VERSION {
        return Err(DecodeError::Version(payload.v));
    }
    let owner = UserId::new(payload.o);
    let change = match payload.change {
        WireChange::MessageCreated { m } => Change::MessageCreated(message(m)?),
        WireChange::MessageUpdated { m } => Change::MessageUpdated(message(m)?),
        WireChange::MessageDelta { c, m, s, t, p } => {
            if let Some(part) = p {
                return Ok(Decoded::Part(DeltaPart {
                    owner,
                    conversation: ConversationId::new(c),
                    message: MessageId::new(m),
                    seq: s,
                    text: t,
                    part,
                }));
            }
            Change::MessageDelta {
                conversation_id: ConversationId::new(c),
                delta: Delta {
                    message_id: MessageId::new(m),
                    seq: s,
                    text: t,
                },
            }
        }
        WireChange::ConversationCreated { c } => Change::ConversationCreated(conversation(c)?),
        WireChange::ConversationUpdated { c } => Change::ConversationUpdated(conversation(c)?),
        WireChange::ConversationDeleted { c } => {
            Change::ConversationDeleted(ConversationId::new(c))
        }
        WireChange::SessionsEnded => Change::SessionsEnded,
        WireChange::Reference { of, id, c } => {
            return Ok(Decoded::Reference(Reference {
                owner,
                kind: of,
                id,
                conversation: ConversationId::new(c),
            }));
        }
    };
    Ok(Decoded::Event(Event::new(owner, change)))
}

fn message(wire: WireMessage) -> Result<Message, DecodeError> {
    Ok(Message {
        id: MessageId::new(wire.id),
        conversation_id: ConversationId::new(wire.c),
        sender: wire
            .sender
            .parse()
            .map_err(|_| DecodeError::Invalid("sender"))?,
        text: wire.text,
        status: wire
            .status
            .parse()
            .map_err(|_| DecodeError::Invalid("status"))?,
        created_at: time(wire.at)?,
    })
}

fn conversation(wire: WireConversation) -> Result<Conversation, DecodeError> {
    Ok(Conversation {
        id: ConversationId::new(wire.id),
        owner: UserId::new(wire.owner),
        name: ConversationName::parse(&wire.name)
            .map_err(|_| DecodeError::Invalid("conversation name"))?,
        created_at: time(wire.created)?,
        updated_at: time(wire.updated)?,
    })
}

fn time(millis: i64) -> Result<Timestamp, DecodeError> {
    Timestamp::from_unix_millis(millis).ok_or(DecodeError::Invalid("timestamp"))
}

/// Most deltas being joined at once; more means parts went missing (a reconnect
/// between two parts), and the oldest are given up.
const MAX_OPEN_DELTAS: usize = 64;

/// Joins the parts of long deltas again, per sending connection: the parts of one
/// delta come from one connection, in order, but other connections' notifications may
/// come between them.
#[derive(Debug, Default)]
pub(super) struct Assembler {
    open: HashMap<(i32, i64, u64), Open>,
    next_age: u64,
}

#[derive(Debug)]
struct Open {
    age: u64,
    expected: u32,
    text: String,
}

/// A part that fits no delta being joined.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("part {got} of delta {seq} of message {message} came after part {expected}")]
pub(super) struct OutOfOrder {
    message: MessageId,
    seq: u64,
    expected: u32,
    got: u32,
}

impl Assembler {
    /// Takes `part`, sent by the backend `sender`: the delta once it is whole.
    pub(super) fn add(
        &mut self,
        sender: i32,
        part: DeltaPart,
    ) -> Result<Option<Event>, OutOfOrder> {
        let key = (sender, part.message.get(), part.seq);
        let open = if part.part.n == 0 {
            if self.open.len() >= MAX_OPEN_DELTAS {
                self.forget_oldest();
            }
            self.next_age += 1;
            self.open.insert(
                key,
                Open {
                    age: self.next_age,
                    expected: 0,
                    text: String::new(),
                },
            );
            self.open.get_mut(&key)
        } else {
            self.open.get_mut(&key)
        };
        let Some(open) = open.filter(|open| open.expected == part.part.n) else {
            let expected = self.open.remove(&key).map_or(0, |open| open.expected);
            return Err(OutOfOrder {
                message: part.message,
                seq: part.seq,
                expected,
                got: part.part.n,
            });
        };
        open.text.push_str(&part.text);
        open.expected = open.expected.saturating_add(1);
        if !part.part.last {
            return Ok(None);
        }
        let text = self
            .open
            .remove(&key)
            .map(|open| open.text)
            .unwrap_or_default();
        Ok(Some(Event::new(
            part.owner,
            Change::MessageDelta {
                conversation_id: part.conversation,
                delta: Delta {
                    message_id: part.message,
                    seq: part.seq,
                    text,
                },
            },
        )))
    }

    /// Forgets every delta being joined: their other parts went with a lost
    /// connection.
    pub(super) fn clear(&mut self) {
        self.open.clear();
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self
            .open
            .iter()
            .min_by_key(|(_, open)| open.age)
            .map(|(key, _)| *key)
        {
            self.open.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use chatbot_domain::{MessageStatus, Sender};

    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_795_586_834_000 + millis).unwrap()
    }

    fn message(text: &str) -> Message {
        Message {
            id: MessageId::new(7),
            conversation_id: ConversationId::new(3),
            sender: Sender::Bot,
            text: text.to_owned(),
            status: MessageStatus::Interrupted,
            created_at: at(5),
        }
    }

    fn conversation() -> Conversation {
        Conversation {
            id: ConversationId::new(3),
            owner: UserId::new(1),
            name: ConversationName::parse("Trip to Oslo \"ü\"").unwrap(),
            created_at: at(1),
            updated_at: at(2),
        }
    }

    fn delta(text: &str) -> Event {
        Event::new(
            UserId::new(1),
            Change::MessageDelta {
                conversation_id: ConversationId::new(3),
                delta: Delta {
                    message_id: MessageId::new(7),
                    seq: 42,
                    text: text.to_owned(),
                },
            },
        )
    }

    fn one(event: &Event) -> String {
        let mut payloads = encode(event).unwrap();
        assert_eq!(payloads.len(), 1, "{payloads:?}");
        payloads.remove(0)
    }

    #[test]
    fn every_change_travels_whole_and_reads_back_equal() {
        let changes = [
            Change::MessageCreated(message("hello \u{1}\n\"world\"")),
            delta("a \u{1f600} piece").change,
            Change::MessageUpdated(message("")),
            Change::ConversationCreated(conversation()),
            Change::ConversationUpdated(conversation()),
            Change::ConversationDeleted(ConversationId::new(3)),
            Change::SessionsEnded,
        ];
        for change in changes {
            let event = Event::new(UserId::new(1), change);
            let payload = one(&event);
            assert!(payload.len() <= MAX_PAYLOAD_BYTES);
            assert_eq!(decode(&payload).unwrap(), Decoded::Event(event));
        }
    }

    #[test]
    fn the_payload_is_compact_json_with_the_owner_and_the_kind() {
        let payload = one(&Event::new(
            UserId::new(12),
            Change::ConversationDeleted(ConversationId::new(34)),
        ));
        assert_eq!(
            payload,
            r#"{"v":1,"o":12,"k":"conversation.deleted","c":34}"#
        );
    }

    #[test]
    fn a_long_message_travels_as_a_reference() {
        for (event, kind) in [
            (
                Change::MessageCreated(message(&"x".repeat(16_000))),
                ReferenceKind::MessageCreated,
            ),
            (
                Change::MessageUpdated(message(&"\u{1}".repeat(1_300))),
                ReferenceKind::MessageUpdated,
            ),
        ] {
            let payload = one(&Event::new(UserId::new(1), event));
            assert!(payload.len() < 200, "{payload}");
            assert_eq!(
                decode(&payload).unwrap(),
                Decoded::Reference(Reference {
                    owner: UserId::new(1),
                    kind,
                    id: 7,
                    conversation: ConversationId::new(3),
                })
            );
        }
    }

    #[test]
    fn the_longest_delta_the_domain_makes_fits_whole_even_if_all_of_it_is_escaped() {
        let worst = "\u{1}".repeat(chatbot_domain::ReplyText::MAX_DELTA_BYTES);
        let event = delta(&worst);
        let payload = one(&event);
        assert!(payload.len() > 6 * worst.len(), "escaped six times over");
        assert!(payload.len() <= MAX_PAYLOAD_BYTES, "{}", payload.len());
        assert_eq!(decode(&payload).unwrap(), Decoded::Event(event));
    }

    #[test]
    fn a_longer_delta_travels_in_parts_that_join_again_whatever_comes_between() {
        let text = format!("{}ü{}", "\u{1}".repeat(3_000), "é".repeat(2_000));
        let event = delta(&text);
        let payloads = encode(&event).unwrap();
        assert!(payloads.len() > 2, "{}", payloads.len());
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD_BYTES));

        let mut assembler = Assembler::default();
        let other_delta = encode(&delta(&"\u{2}".repeat(2_000))).unwrap();
        let mut joined = Vec::new();
        // Another sender's parts come between this one's.
        let others = other_delta.iter().map(|p| (9, p));
        let mine = payloads.iter().map(|p| (1, p));
        let interleaved: Vec<_> = mine.zip(others.clone()).flat_map(|(a, b)| [a, b]).collect();
        let rest = payloads.iter().skip(other_delta.len()).map(|p| (1, p));
        for (sender, payload) in interleaved.into_iter().chain(rest) {
            let Decoded::Part(part) = decode(payload).unwrap() else {
                panic!("a part: {payload}");
            };
            if let Some(whole) = assembler.add(sender, part).unwrap() {
                joined.push((sender, whole));
            }
        }
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[0], (9, delta(&"\u{2}".repeat(2_000))));
        assert_eq!(joined[1], (1, event));
    }

    #[test]
    fn a_part_without_those_before_it_is_refused() {
        let payloads = encode(&delta(&"\u{1}".repeat(3_000))).unwrap();
        assert_eq!(payloads.len(), 3);
        let mut assembler = Assembler::default();
        let Decoded::Part(second) = decode(&payloads[1]).unwrap() else {
            panic!("a part");
        };
        assert!(assembler.add(1, second).is_err());
        let Decoded::Part(first) = decode(&payloads[0]).unwrap() else {
            panic!("a part");
        };
        assert_eq!(assembler.add(1, first), Ok(None));
        assembler.clear();
        let Decoded::Part(last) = decode(&payloads[2]).unwrap() else {
            panic!("a part");
        };
        assert!(
            assembler.add(1, last).is_err(),
            "forgotten with the connection"
        );
    }

    #[test]
    fn text_is_cut_between_characters() {
        assert_eq!(split_text("", 4), [""]);
        assert_eq!(split_text("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(split_text("ééé", 3), ["é", "é", "é"]);
        assert_eq!(
            split_text("😀a", 2),
            ["😀", "a"],
            "a character longer than a piece"
        );
    }

    #[test]
    fn anything_else_is_refused_not_misread() {
        for (payload, why) in [
            ("", "empty"),
            ("not json", "garbage"),
            (r#"{"v":2,"o":1,"k":"sessions.ended"}"#, "another version"),
            (r#"{"v":1,"o":1,"k":"message.exploded"}"#, "an unknown kind"),
            (r#"{"v":1,"k":"sessions.ended"}"#, "no owner"),
            (
                r#"{"v":1,"o":1,"k":"message.created","m":{"id":1,"c":2,"sender":"system","text":"","status":"complete","at":0}}"#,
                "an unknown sender",
            ),
            (
                r#"{"v":1,"o":1,"k":"conversation.updated","c":{"id":1,"owner":1,"name":"","created":0,"updated":0}}"#,
                "an empty name",
            ),
        ] {
            assert!(decode(payload).is_err(), "{why}: {payload}");
        }
        assert!(matches!(
            decode(r#"{"v":2,"o":1,"k":"sessions.ended"}"#),
            Err(DecodeError::Version(2))
        ));
    }
}
