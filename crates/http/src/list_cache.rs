//! Rendered conversation lists, reused while their owner's revision stays the same.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::web::Bytes;
use chatbot_domain::{Revision, UserId};

/// `GET /api/conversations` bodies by user, each valid for one [`Revision`].
///
/// A repeated list then costs one indexed read of the revision instead of reading,
/// decoding and encoding every message again. The revision is kept in the database
/// and changes in the same transaction as the data, so a body is never served after
/// a change, whichever instance made it. Bounded: when the next body would not fit,
/// the cache starts over.
#[derive(Debug, Default)]
pub(crate) struct ListCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_user: HashMap<UserId, (Revision, Bytes)>,
    bytes: usize,
}

impl ListCache {
    /// Most bytes of bodies kept.
    const CAPACITY: usize = 8 << 20;

    /// `user`'s list body as of `revision`, if kept.
    pub(crate) fn get(&self, user: UserId, revision: Revision) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        let (kept, body) = entries.by_user.get(&user)?;
        (*kept == revision).then(|| body.clone())
    }

    /// Keeps `body`, `user`'s list as of `revision` or later, unless a body of a later
    /// revision is kept already or `body` is too big to be worth the room.
    pub(crate) fn put(&self, user: UserId, revision: Revision, body: Bytes) {
        if body.len() > Self::CAPACITY / 8 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some((kept, _)) = entries.by_user.get(&user)
            && *kept > revision
        {
            return;
        }
        if entries.bytes + body.len() > Self::CAPACITY {
            entries.by_user.clear();
            entries.bytes = 0;
        }
        entries.bytes += body.len();
        if let Some((_, replaced)) = entries.by_user.insert(user, (revision, body)) {
            entries.bytes -= replaced.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: UserId = UserId::new(1);

    #[test]
    fn a_body_serves_only_its_own_revision() {
        let cache = ListCache::default();
        cache.put(ALICE, Revision(3), Bytes::from_static(b"[3]"));
        assert_eq!(cache.get(ALICE, Revision(3)).as_deref(), Some(&b"[3]"[..]));
        assert_eq!(cache.get(ALICE, Revision(4)), None);
        assert_eq!(cache.get(UserId::new(2), Revision(3)), None);
    }

    #[test]
    fn an_older_rendering_never_replaces_a_newer_one() {
        let cache = ListCache::default();
        cache.put(ALICE, Revision(5), Bytes::from_static(b"[5]"));
        cache.put(ALICE, Revision(4), Bytes::from_static(b"[4]"));
        assert!(cache.get(ALICE, Revision(5)).is_some());
        cache.put(ALICE, Revision(6), Bytes::from_static(b"[6]"));
        assert_eq!(cache.get(ALICE, Revision(6)).as_deref(), Some(&b"[6]"[..]));
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = ListCache::default();
        let body = Bytes::from(vec![b' '; ListCache::CAPACITY / 8]);
        for user in 0..20 {
            cache.put(UserId::new(user), Revision(0), body.clone());
            assert!(cache.entries.lock().unwrap().bytes <= ListCache::CAPACITY);
        }
        assert!(cache.get(UserId::new(19), Revision(0)).is_some());
        let too_big = Bytes::from(vec![b' '; ListCache::CAPACITY / 8 + 1]);
        cache.put(ALICE, Revision(0), too_big);
        assert_eq!(cache.get(ALICE, Revision(0)), None);
    }
}
