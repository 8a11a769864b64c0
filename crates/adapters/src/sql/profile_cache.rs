//! [`ProfileCache`]: recently read user profiles, kept for a short time.
//!
//! Every JWT-authenticated read (`current_user_profile`) needs the user's
//! profile, and clients read it far more often than it changes: an app
//! polls it at every start and screen. A database round trip costs ten
//! times what the rest of such a request does, so the store keeps each
//! profile it read for `ttl` and answers from memory until then.
//!
//! Freshness: every write this process makes to a user's profile (phone,
//! names, addresses, permissions) forgets that user's entry in the same
//! call, so this instance never serves its own stale data. A write made by
//! another instance (or by hand in the database) shows after at most `ttl`.
//! A zero `ttl` turns the cache off.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use phonegate_domain::user::{UserId, UserProfile};

/// At most this many profiles are kept; past it, expired entries are swept
/// and, if that frees nothing, every entry is dropped (they are all less
/// than `ttl` old, so that costs at most one read each). A profile is a few
/// hundred bytes, so this bounds the cache at a few MiB.
const MAX_ENTRIES: usize = 8192;

#[derive(Debug, Clone)]
pub(super) struct ProfileCache {
    ttl: Duration,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<i64, Entry>,
    /// How many profile writes this process has made. A read that began
    /// before a write (of any user: writes are rare, so this costs little)
    /// does not keep what it read, which may predate the write.
    writes: u64,
}

#[derive(Debug)]
struct Entry {
    profile: UserProfile,
    /// When the read that produced it began: the data is at most this old.
    fetched: Instant,
}

/// A read about to go to the database, to be handed back to
/// [`ProfileCache::keep`] with its result.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingRead {
    writes: u64,
    started: Instant,
}

impl ProfileCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Arc::default(),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Entries are replaced whole, so a lock poisoned by a panic elsewhere
        // still guards a valid cache.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached profile of `id`, if one was read less than `ttl` ago;
    /// otherwise what to hand to [`Self::keep`] after reading it.
    pub(super) fn get(&self, id: UserId) -> Result<UserProfile, PendingRead> {
        let started = Instant::now();
        if self.ttl.is_zero() {
            return Err(PendingRead { writes: 0, started });
        }
        let inner = self.inner();
        match inner.entries.get(&id.get()) {
            Some(entry) if started.duration_since(entry.fetched) < self.ttl => Ok(entry.profile.clone()),
            _ => Err(PendingRead {
                writes: inner.writes,
                started,
            }),
        }
    }

    /// Keeps `profile`, read after `pending`, unless this process wrote a
    /// profile while it was being read.
    pub(super) fn keep(&self, id: UserId, pending: PendingRead, profile: &UserProfile) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.inner();
        if inner.writes != pending.writes {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            let (ttl, now) = (self.ttl, Instant::now());
            inner.entries.retain(|_, entry| now.duration_since(entry.fetched) < ttl);
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        inner.entries.insert(
            id.get(),
            Entry {
                profile: profile.clone(),
                fetched: pending.started,
            },
        );
    }

    /// Drops `id`'s entry: this process has just changed that profile.
    /// Call it after the write has committed.
    pub(super) fn forget(&self, id: UserId) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.inner();
        inner.entries.remove(&id.get());
        inner.writes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonegate_domain::user::User;

    fn profile(id: i64, name: &str) -> UserProfile {
        UserProfile {
            user: User {
                id: UserId::new(id),
                phone: None,
                email: None,
                first_name: Some(name.to_owned()),
                last_name: None,
            },
            addresses: Vec::new(),
            permissions: Vec::new(),
        }
    }

    fn name(profile: &UserProfile) -> &str {
        profile.user.first_name.as_deref().unwrap_or_default()
    }

    #[test]
    fn a_read_profile_is_served_until_its_ttl_ends() {
        let cache = ProfileCache::new(Duration::from_millis(200));
        let id = UserId::new(7);
        let pending = cache.get(id).unwrap_err();
        cache.keep(id, pending, &profile(7, "Ada"));
        assert_eq!(name(&cache.get(id).unwrap()), "Ada");
        assert!(cache.get(UserId::new(8)).is_err(), "another user is not cached");
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get(id).is_err(), "an entry older than the ttl is read again");
    }

    #[test]
    fn a_write_forgets_the_entry_and_a_read_that_raced_it_is_not_kept() {
        let cache = ProfileCache::new(Duration::from_secs(60));
        let id = UserId::new(7);
        let pending = cache.get(id).unwrap_err();
        cache.keep(id, pending, &profile(7, "Ada"));
        cache.forget(id);
        assert!(cache.get(id).is_err(), "a written profile is read again");
        // A read began, then a write committed, then the read ended: what it
        // read may predate the write, so it is not kept.
        let pending = cache.get(id).unwrap_err();
        cache.forget(id);
        cache.keep(id, pending, &profile(7, "stale"));
        assert!(cache.get(id).is_err());
        let pending = cache.get(id).unwrap_err();
        cache.keep(id, pending, &profile(7, "Grace"));
        assert_eq!(name(&cache.get(id).unwrap()), "Grace");
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = ProfileCache::new(Duration::ZERO);
        let id = UserId::new(7);
        let pending = cache.get(id).unwrap_err();
        cache.keep(id, pending, &profile(7, "Ada"));
        assert!(cache.get(id).is_err());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ProfileCache::new(Duration::from_secs(60));
        for id in 0..(MAX_ENTRIES as i64 + 10) {
            let pending = cache.get(UserId::new(id)).unwrap_err();
            cache.keep(UserId::new(id), pending, &profile(id, "x"));
        }
        assert!(cache.inner().entries.len() <= MAX_ENTRIES);
        let last = UserId::new(MAX_ENTRIES as i64 + 9);
        assert!(cache.get(last).is_ok(), "the newest entry is kept");
    }
}
