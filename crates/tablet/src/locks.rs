//! The lock table of a tablet's leader: exclusive row locks with wound-wait.
//!
//! Transactions validate at commit (see `kv.rs`): a transaction commits only if nothing it
//! read changed after its snapshot. Validation alone makes every transaction that read a hot
//! row and lost the race start over. Locks turn that race into a queue. A transaction that is
//! about to change a row it reads (`UPDATE`, `DELETE`) first takes the row's lock at the
//! tablet's leader; the leader answers once the lock is granted and tells whether the row
//! changed since the transaction's snapshot, in which case the transaction moves its snapshot
//! forward (after checking that nothing else it read changed) and reads the row anew. Writes
//! that reach the leader wait while another transaction holds a lock on a key they change.
//!
//! **Wound-wait** keeps waits free of deadlocks. Transactions are ordered by age (the
//! timestamp of their first snapshot, then their id). A younger transaction waits for an older
//! holder; an older one *wounds* a younger holder: it takes the lock, and the wounded
//! transaction's next lock request or commit at this tablet fails with a retryable error
//! (SQLSTATE 40001). Waits that last therefore only ever point from younger to older
//! transactions, so they cannot form a cycle.
//!
//! An older transaction does not wound at once: a holder of a hot row is usually a commit
//! away from releasing it (or waits in a queue that moves), and wounding it would throw its
//! work away to save a short wait. The table knows what each transaction waits for here, so
//! every [`WOUND_GRACE`] an older waiter follows the chain of waits from the holder (holder
//! waits for a key, whose holder waits for another...); if the chain leads back to itself, the
//! wait is a deadlock within this tablet and the holder is wounded. A cycle through other
//! tablets is invisible here: the older waiter wounds the holder when it has waited
//! [`DEADLOCK_TIMEOUT`] (PostgreSQL's `deadlock_timeout` default). A deadlock within a tablet
//! costs at most a grace, one across tablets at most that timeout.
//!
//! **Locks are advisory; validation stays the safety net.** The table lives in the leader's
//! memory only. A lock is released when its transaction commits or ends, and it lapses when
//! its holder has not been heard from for [`LOCK_TTL`] (a gateway that died holding it).
//! Leadership moving, a lapsed lock or a wound therefore never breaks serializability: a
//! transaction whose reads changed under it still fails validation at commit. Locks only
//! decide who waits, which makes contended rows queue instead of retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use meridian_clock::{Timestamp, TrueTime};
use tokio::sync::Notify;

use crate::{Error, Result};

/// How long a lock outlives the last request of its holder at this tablet.
pub const LOCK_TTL: Duration = Duration::from_secs(5);

/// How long an older transaction waits for a younger holder before wounding it when their
/// waits form a cycle in this table (and how often it looks for one).
pub const WOUND_GRACE: Duration = Duration::from_millis(100);

/// How long an older transaction waits for a younger holder before wounding it in any case
/// (a cycle through other tablets cannot be seen here).
pub const DEADLOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest chain of waits followed when looking for a cycle.
const MAX_CHAIN: usize = 64;

/// The table sweeps lapsed entries once it holds this many.
const SWEEP_AT: usize = 4096;

/// A transaction that takes locks: its id and its age (smaller is older).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    /// Unique among live transactions.
    pub id: Vec<u8>,
    /// The timestamp of the transaction's first snapshot.
    pub priority: Timestamp,
}

impl LockOwner {
    /// Whether `self` is older than `other` (wound-wait's order).
    fn older_than(&self, other: &LockOwner) -> bool {
        (self.priority, &self.id) < (other.priority, &other.id)
    }
}

struct Held {
    owner: LockOwner,
    /// Waiters are woken when the lock is released or changes hands.
    changed: Arc<Notify>,
}

#[derive(Default)]
struct State {
    locks: HashMap<Vec<u8>, Held>,
    /// When each holder's locks lapse (nanoseconds of the clock's latest bound).
    leases: HashMap<Vec<u8>, u64>,
    /// Transactions wounded here, until when the mark is kept.
    wounded: HashMap<Vec<u8>, u64>,
    /// The key each transaction waits for here, while it waits.
    waiting: HashMap<Vec<u8>, Vec<u8>>,
}

impl State {
    fn live(&self, owner: &[u8], now: u64) -> bool {
        self.leases.get(owner).is_some_and(|&until| until > now)
    }

    fn is_wounded(&self, owner: &[u8], now: u64) -> bool {
        self.wounded.get(owner).is_some_and(|&until| until > now)
    }

    /// Whether the waits starting at `holder` (it waits for a key, whose holder waits for
    /// another...) lead to `waiter`: a cycle, when `waiter` waits for `holder`.
    fn waits_for(&self, holder: &[u8], waiter: &[u8], now: u64) -> bool {
        let mut at = holder;
        for _ in 0..MAX_CHAIN {
            let Some(next) = self
                .waiting
                .get(at)
                .and_then(|key| self.locks.get(key))
                .map(|h| h.owner.id.as_slice())
                .filter(|id| self.live(id, now))
            else {
                return false;
            };
            if next == waiter {
                return true;
            }
            at = next;
        }
        false
    }

    fn sweep(&mut self, now: u64) {
        if self.locks.len() < SWEEP_AT && self.leases.len() < SWEEP_AT {
            return;
        }
        self.leases.retain(|_, until| *until > now);
        self.wounded.retain(|_, until| *until > now);
        let leases = &self.leases;
        self.locks.retain(|_, h| {
            let keep = leases.contains_key(&h.owner.id);
            if !keep {
                h.changed.notify_waiters();
            }
            keep
        });
    }
}

/// Removes a transaction's entry in [`State::waiting`] when its wait ends, also when it fails
/// or is dropped. (A transaction that ends holds no lock, so no chain of waits reaches its
/// entry, and `release` leaves it to the mark.)
struct WaitMark<'a> {
    table: &'a LockTable,
    owner: &'a [u8],
}

impl Drop for WaitMark<'_> {
    fn drop(&mut self) {
        self.table.state().waiting.remove(self.owner);
    }
}

/// What a request finds on a key.
enum Found {
    /// Free, held by the requester, or taken from a holder that lapsed or was wounded.
    Granted,
    /// Held by another live transaction: wait for it to change, or this long at most.
    Wait(Arc<Notify>, Duration),
}

/// The locks of one tablet (kept by every replica, used by the leader).
pub struct LockTable {
    state: Mutex<State>,
    clock: Arc<TrueTime>,
    /// The longest a request waits in all before it gives up with a retryable error.
    max_wait: Duration,
}

impl LockTable {
    /// An empty table; requests wait at most `max_wait` in all.
    pub fn new(clock: Arc<TrueTime>, max_wait: Duration) -> LockTable {
        LockTable {
            state: Mutex::new(State::default()),
            clock,
            max_wait,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Result<u64> {
        Ok(self.clock.now()?.latest.as_nanos())
    }

    fn wounded_error() -> Error {
        crate::metrics::LOCK_WOUNDS.inc();
        Error::TxnAborted {
            reason: "wounded by an older transaction that needed its lock (wound-wait)".into(),
        }
    }

    fn wait_timeout(&self) -> Error {
        Error::TxnAborted {
            reason: format!(
                "waited more than {:?} for a row lock held by another transaction",
                self.max_wait
            ),
        }
    }

    /// Takes the exclusive locks on `keys` for `owner`: waits while an older live transaction
    /// holds one, wounds a younger holder. Fails with a retryable error when `owner` was
    /// wounded here or waited longer than the table's bound.
    pub async fn acquire(&self, keys: &[Vec<u8>], owner: &LockOwner) -> Result<()> {
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let waiting = async {
            for key in sorted {
                self.wait_for(key, Some(owner), true).await?;
            }
            Ok(())
        };
        match tokio::time::timeout(self.max_wait, waiting).await {
            Ok(r) => r,
            Err(_) => Err(self.wait_timeout()),
        }
    }

    /// Before a write that changes `keys` is proposed: waits while another live transaction
    /// holds a lock on one of them (a write of `owner` goes ahead on its own locks and wounds
    /// younger holders, like a lock request). A plain write (`owner` `None`) waits for every
    /// holder. Fails like [`LockTable::acquire`].
    pub async fn admit_write<'k>(
        &self,
        keys: impl Iterator<Item = &'k [u8]>,
        owner: Option<&LockOwner>,
    ) -> Result<()> {
        {
            let st = self.state();
            if st.locks.is_empty() {
                return match owner {
                    Some(o) if st.is_wounded(&o.id, self.now()?) => Err(Self::wounded_error()),
                    _ => Ok(()),
                };
            }
        }
        let waiting = async {
            for key in keys {
                self.wait_for(key, owner, false).await?;
            }
            Ok(())
        };
        match tokio::time::timeout(self.max_wait, waiting).await {
            Ok(r) => r,
            Err(_) => Err(self.wait_timeout()),
        }
    }

    /// Waits until `owner` may have `key`; takes the lock when `take`.
    async fn wait_for(&self, key: &[u8], owner: Option<&LockOwner>, take: bool) -> Result<()> {
        let mut since = None;
        let mut counted = false;
        // Set at the first wait: forgets the wait however this ends (granted, failed, dropped).
        let mut _mark = None;
        loop {
            let changed: Arc<Notify>;
            let (notified, recheck) = {
                let mut st = self.state();
                let now = self.now()?;
                let waited = Duration::from_nanos(now.saturating_sub(*since.get_or_insert(now)));
                let recheck;
                (changed, recheck) = match self.find(&mut st, key, owner, take, now, waited)? {
                    Found::Granted => return Ok(()),
                    Found::Wait(changed, recheck) => (changed, recheck),
                };
                if let Some(o) = owner
                    && _mark.is_none()
                {
                    // Made once: dropping a mark takes the state's lock, held here.
                    _mark = Some(WaitMark {
                        table: self,
                        owner: &o.id,
                    });
                }
                // Registered while the state is locked, so a release cannot slip in between.
                let mut notified = Box::pin(changed.notified());
                notified.as_mut().enable();
                (notified, recheck)
            };
            if !counted {
                counted = true;
                crate::metrics::LOCK_WAITS.inc();
            }
            let _ = tokio::time::timeout(recheck.max(Duration::from_millis(1)), notified).await;
        }
    }

    /// What `owner` (who has waited `waited` for `key` so far) may do now.
    fn find(
        &self,
        st: &mut State,
        key: &[u8],
        owner: Option<&LockOwner>,
        take: bool,
        now: u64,
        waited: Duration,
    ) -> Result<Found> {
        if let Some(o) = owner {
            if st.is_wounded(&o.id, now) {
                return Err(Self::wounded_error());
            }
            // Any request renews the owner's lease on all its locks here.
            st.leases
                .insert(o.id.clone(), now + LOCK_TTL.as_nanos() as u64);
        }
        let holder = st.locks.get(key).map(|h| h.owner.clone());
        let grant = match (&holder, owner) {
            (None, _) => true,
            (Some(h), Some(o)) if h.id == o.id => true,
            (Some(h), _) if !st.live(&h.id, now) => true,
            (Some(h), Some(o))
                if o.older_than(h)
                    && (waited >= DEADLOCK_TIMEOUT
                        || (waited >= WOUND_GRACE && st.waits_for(&h.id, &o.id, now))) =>
            {
                st.wounded
                    .insert(h.id.clone(), now + LOCK_TTL.as_nanos() as u64);
                crate::metrics::LOCK_WOUNDS_INFLICTED.inc();
                true
            }
            (Some(_), _) => false,
        };
        if !grant {
            let changed = st.locks.get(key).map(|h| h.changed.clone());
            // An older requester looks for a cycle every grace; anyone else at least now and
            // then, as the holder's lease may lapse without anyone releasing it.
            let recheck = match (&holder, owner) {
                (Some(h), Some(o)) if o.older_than(h) => {
                    WOUND_GRACE.min(DEADLOCK_TIMEOUT.saturating_sub(waited))
                }
                _ => LOCK_TTL / 10,
            };
            if let Some(o) = owner {
                st.waiting.insert(o.id.clone(), key.to_vec());
            }
            return Ok(Found::Wait(changed.unwrap_or_default(), recheck));
        }
        // Granted: no longer waiting (the wait's mark would say so only once it returns).
        if let Some(o) = owner {
            st.waiting.remove(&o.id);
        }
        let displaced = holder.is_some_and(|h| owner.is_none_or(|o| o.id != h.id));
        match (take, owner) {
            (true, Some(o)) => {
                let entry = st.locks.entry(key.to_vec()).or_insert_with(|| Held {
                    owner: o.clone(),
                    changed: Arc::default(),
                });
                entry.owner = o.clone();
                if displaced {
                    entry.changed.notify_waiters();
                }
            }
            _ if displaced => {
                // A write passes a lapsed or wounded holder's lock: drop it.
                if let Some(h) = st.locks.remove(key) {
                    h.changed.notify_waiters();
                }
            }
            _ => {}
        }
        st.sweep(now);
        Ok(Found::Granted)
    }

    /// Releases every lock of the transaction `owner` here and forgets it (it ended).
    pub fn release(&self, owner: &[u8]) {
        let mut st = self.state();
        if st.leases.remove(owner).is_none() && !st.wounded.contains_key(owner) {
            return;
        }
        st.wounded.remove(owner);
        st.locks.retain(|_, h| {
            let mine = h.owner.id == owner;
            if mine {
                h.changed.notify_waiters();
            }
            !mine
        });
    }

    /// Drops every lock (the replica stopped leading: its successor starts with none).
    pub fn clear(&self) {
        let mut st = self.state();
        for h in st.locks.values() {
            h.changed.notify_waiters();
        }
        *st = State::default();
    }

    /// How many keys are locked (lapsed locks included until swept).
    pub fn len(&self) -> usize {
        self.state().locks.len()
    }

    /// Whether no key is locked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use meridian_clock::{ManualClock, TrueTimeConfig};

    use super::*;

    fn table() -> (Arc<LockTable>, Arc<ManualClock>) {
        let physical = Arc::new(ManualClock::new(Timestamp::from_nanos(1_000_000_000)));
        let clock = Arc::new(TrueTime::new(physical.clone(), TrueTimeConfig::default()));
        (
            Arc::new(LockTable::new(clock, Duration::from_secs(2))),
            physical,
        )
    }

    fn owner(id: u8, priority: u64) -> LockOwner {
        LockOwner {
            id: vec![id],
            priority: Timestamp::from_nanos(priority),
        }
    }

    fn key(k: &str) -> Vec<Vec<u8>> {
        vec![k.as_bytes().to_vec()]
    }

    #[tokio::test]
    async fn a_younger_transaction_waits_for_the_older_holder_until_it_ends() {
        let (t, _) = table();
        let old = owner(1, 10);
        let young = owner(2, 20);
        t.acquire(&key("a"), &old).await.unwrap();
        let waiter = {
            let t = t.clone();
            let young = young.clone();
            tokio::spawn(async move { t.acquire(&key("a"), &young).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the younger one must wait");
        t.release(&old.id);
        tokio::time::timeout(Duration::from_millis(200), waiter)
            .await
            .expect("woken by the release")
            .unwrap()
            .unwrap();
        // The lock is the younger one's now: a plain write waits for it.
        let write = {
            let t = t.clone();
            tokio::spawn(async move { t.admit_write([b"a".as_slice()].into_iter(), None).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!write.is_finished(), "a plain write waits for the lock");
        t.release(&young.id);
        write.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_older_transaction_wounds_a_younger_holder() {
        let (t, clock) = table();
        let old = owner(1, 10);
        let young = owner(2, 20);
        t.acquire(&key("a"), &young).await.unwrap();
        // The older one gives the holder its grace, then takes the lock.
        let taking = {
            let t = t.clone();
            let old = old.clone();
            tokio::spawn(async move { t.acquire(&key("a"), &old).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!taking.is_finished(), "a younger holder gets its grace");
        // The holder waits for nothing here, so no deadlock is in sight: it keeps its lock
        // past the grace...
        clock.advance(WOUND_GRACE);
        tokio::time::sleep(WOUND_GRACE + Duration::from_millis(50)).await;
        assert!(
            !taking.is_finished(),
            "no cycle: the holder is not wounded yet"
        );
        // ...until the older one has waited the deadlock timeout.
        clock.advance(DEADLOCK_TIMEOUT);
        tokio::time::timeout(Duration::from_millis(500), taking)
            .await
            .expect("the older transaction does not wait past the deadlock timeout")
            .unwrap()
            .unwrap();
        let err = t.acquire(&key("b"), &young).await.unwrap_err();
        assert!(
            matches!(&err, Error::TxnAborted { reason } if reason.contains("wound")),
            "{err}"
        );
        // Its commit is refused too, but the older one's goes through its own lock.
        let keys = [b"a".as_slice()];
        assert!(t.admit_write(keys.into_iter(), Some(&young)).await.is_err());
        t.admit_write(keys.into_iter(), Some(&old)).await.unwrap();
        // Once it ended here the id is forgotten.
        t.release(&young.id);
        t.release(&old.id);
        assert!(t.is_empty());
    }

    #[tokio::test]
    async fn crossed_lock_orders_do_not_deadlock() {
        let (t, clock) = table();
        let old = owner(1, 10);
        let young = owner(2, 20);
        t.acquire(&key("a"), &old).await.unwrap();
        t.acquire(&key("b"), &young).await.unwrap();
        // young -> a waits for old; old -> b wounds young after the grace.
        let young_wait = {
            let t = t.clone();
            let young = young.clone();
            tokio::spawn(async move { t.acquire(&key("a"), &young).await })
        };
        let old_takes = {
            let t = t.clone();
            let old = old.clone();
            tokio::spawn(async move { t.acquire(&key("b"), &old).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        clock.advance(WOUND_GRACE);
        tokio::time::timeout(Duration::from_millis(500), old_takes)
            .await
            .expect("the cycle is broken by the wound")
            .unwrap()
            .unwrap();
        t.release(&old.id);
        let err = young_wait.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::TxnAborted { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_cycle_through_three_transactions_is_broken_after_a_grace() {
        let (t, clock) = table();
        let (old, middle, young) = (owner(1, 10), owner(2, 20), owner(3, 30));
        t.acquire(&key("a"), &old).await.unwrap();
        t.acquire(&key("b"), &middle).await.unwrap();
        t.acquire(&key("c"), &young).await.unwrap();
        let wait = |k: &'static str, o: &LockOwner| {
            let (t, o) = (t.clone(), o.clone());
            tokio::spawn(async move { t.acquire(&key(k), &o).await })
        };
        // old -> b (middle) -> c (young) -> a (old): each waits for the next one's lock.
        let young_waits = wait("a", &young);
        let middle_waits = wait("c", &middle);
        let old_waits = wait("b", &old);
        tokio::time::sleep(Duration::from_millis(20)).await;
        clock.advance(WOUND_GRACE);
        // An older waiter finds the cycle after a grace and wounds the younger holder in it.
        let lost = tokio::time::timeout(Duration::from_millis(500), young_waits)
            .await
            .expect("the cycle is found and broken after a grace")
            .unwrap()
            .unwrap_err();
        assert!(matches!(&lost, Error::TxnAborted { reason } if reason.contains("wound")));
        tokio::time::timeout(Duration::from_millis(500), middle_waits)
            .await
            .expect("the wounded transaction's lock is taken")
            .unwrap()
            .unwrap();
        // What is left is a plain wait: old gets b when middle ends.
        assert!(!old_waits.is_finished());
        t.release(&middle.id);
        tokio::time::timeout(Duration::from_millis(500), old_waits)
            .await
            .expect("woken by the release")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_lock_lapses_when_its_holder_goes_silent() {
        let (t, clock) = table();
        t.acquire(&key("a"), &owner(1, 10)).await.unwrap();
        clock.advance(LOCK_TTL + Duration::from_millis(1));
        tokio::time::timeout(
            Duration::from_millis(100),
            t.acquire(&key("a"), &owner(2, 20)),
        )
        .await
        .expect("a lapsed lock is free")
        .unwrap();
    }

    #[tokio::test]
    async fn waiting_too_long_is_a_retryable_error() {
        let (t, _) = table();
        t.acquire(&key("a"), &owner(1, 10)).await.unwrap();
        let t2 = Arc::new(LockTable::new(t.clock.clone(), Duration::from_millis(100)));
        t2.acquire(&key("a"), &owner(1, 10)).await.unwrap();
        let err = t2.acquire(&key("a"), &owner(2, 20)).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        // A plain write meets the same bound.
        let err = t2
            .admit_write([b"a".as_slice()].into_iter(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TxnAborted { .. }), "{err}");
    }
}
