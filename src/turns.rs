//! Saves of one session from this process take turns, and each builds on the one before.
//!
//! Without this, N requests of one session that finish together each send a compare-and-set
//! built on the record they loaded: one wins, the others conflict, fetch, merge and try again,
//! so N writers cost O(N²) store calls, and past the retry bound some fail. With it, a save
//! waits for the save of the same session id that is in flight in this process (only for that
//! store call: no lock is held across a handler, and other sessions never wait). When its turn
//! comes, the save before may already have written its changes (a turn takes the saves queued
//! behind it into its own compare-and-set); if not, it replays its changes onto the record that
//! save wrote, so its compare-and-set matches the store on the first try. Conflicts, with their
//! merge and retry, are left to writers in other processes.
//!
//! The compare-and-set still decides: a turn only chooses a better base for it, so a wrong
//! guess costs one conflict, never a lost change.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use foldhash::fast::RandomState;

use crate::{codec::Data, store::Record};

const SHARDS: usize = 16;

/// How many successive records of one session a turn remembers: a save that loaded an older
/// one than these costs one conflict instead of a rebase.
const CHAIN_LEN: usize = 256;

type Shard<T> = Mutex<HashMap<Box<str>, Slot<T>, RandomState>>;

/// The per-session turns of one layer. `T` is what a waiting save leaves in the queue for the
/// turn holder to save along with its own (the layer's [`Session`](crate::Session)).
pub(crate) struct SaveTurns<T> {
    shards: Box<[Shard<T>]>,
    hasher: RandomState,
}

struct Slot<T> {
    /// Saves holding or waiting for this session's turn; the slot is dropped at zero.
    users: usize,
    chain: Arc<tokio::sync::Mutex<Chain>>,
    /// Saves waiting for the turn that the holder may take into its own write.
    queue: Vec<(T, Ticket)>,
}

/// The records of one session as this process's saves replaced them, oldest first: each after
/// the first was written over the one before it by a compare-and-set that succeeded. Only the
/// newest is ever a base to build on, so only its data is kept.
#[derive(Default)]
struct Chain {
    records: Vec<Record>,
    newest: Arc<Data>,
}

/// A queued save's receipt: marked done when a turn holder wrote it along with its own.
#[derive(Clone, Default)]
pub(crate) struct Ticket(Arc<AtomicBool>);

impl Ticket {
    /// Tells the waiting save that its changes are in the store.
    pub(crate) fn done(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_done(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn is(&self, other: &Ticket) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> SaveTurns<T> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
        }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, HashMap<Box<str>, Slot<T>, RandomState>> {
        let i = (self.hasher.hash_one(id) as usize) % self.shards.len();
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` and waits for session `id`'s turn to save. By the time the turn comes,
    /// the holder before may have saved `item` already ([`Turn::saved_by_another`]).
    /// Cancel-safe: a caller dropped while waiting takes `item` out of the queue.
    pub(crate) async fn take(&self, id: &str, item: T) -> Turn<'_, T> {
        let ticket = Ticket::default();
        let chain = {
            let mut shard = self.shard(id);
            let slot = shard.entry(id.into()).or_insert_with(|| Slot {
                users: 0,
                chain: Arc::default(),
                queue: Vec::new(),
            });
            slot.users += 1;
            slot.queue.push((item, ticket.clone()));
            if slot.users > 1 {
                tracing::trace!("a save of this session is in flight; queued behind it");
            }
            Arc::clone(&slot.chain)
        };
        let place = Place {
            turns: self,
            id: id.into(),
            ticket,
        };
        let guard = chain.lock_owned().await;
        // Out of the queue now that it holds the turn (if the holder before took it already,
        // it is gone and its ticket tells what happened).
        let own = {
            let mut shard = self.shard(id);
            let slot = shard.get_mut(id).expect("a slot lives while it has users");
            let at = slot.queue.iter().position(|(_, t)| t.is(&place.ticket));
            at.map(|at| slot.queue.remove(at))
        };
        drop(own);
        Turn { guard, place }
    }
}

/// A save's place in a session's queue, from arrival until its turn ends.
struct Place<'a, T> {
    turns: &'a SaveTurns<T>,
    id: Box<str>,
    ticket: Ticket,
}

impl<T> Drop for Place<'_, T> {
    fn drop(&mut self) {
        let mut unqueued = Vec::new();
        let mut emptied = None;
        {
            let mut shard = self.turns.shard(&self.id);
            if let Some(slot) = shard.get_mut(&self.id) {
                slot.users -= 1;
                if let Some(at) = slot.queue.iter().position(|(_, t)| t.is(&self.ticket)) {
                    unqueued.push(slot.queue.remove(at));
                }
                if slot.users == 0 {
                    emptied = shard.remove(&self.id);
                }
            }
        }
        // Whatever the queue held is dropped here, outside the shard's lock.
        drop((unqueued, emptied));
    }
}

/// One save's turn for one session id; the next save of that id waits until it is dropped.
pub(crate) struct Turn<'a, T> {
    // Field order is drop order: the lock is released before the place is given up.
    guard: tokio::sync::OwnedMutexGuard<Chain>,
    place: Place<'a, T>,
}

impl<T> Turn<'_, T> {
    /// The session id this turn is for.
    pub(crate) fn id(&self) -> &str {
        &self.place.id
    }

    /// Whether the turn holder before this one wrote this save's changes along with its own.
    pub(crate) fn saved_by_another(&self) -> bool {
        self.place.ticket.is_done()
    }

    /// Takes the saves waiting behind this one out of the queue, oldest first, for this turn to
    /// write along with its own. Each one whose changes are written must be told so with
    /// [`Ticket::done`]; the others save themselves when their turn comes.
    pub(crate) fn take_queued(&mut self) -> Vec<(T, Ticket)> {
        let mut shard = self.place.turns.shard(&self.place.id);
        let Some(slot) = shard.get_mut(&self.place.id) else {
            return Vec::new();
        };
        std::mem::take(&mut slot.queue)
    }

    /// The newest record this process wrote over `loaded`, directly or through later saves,
    /// and its data: the base a save that loaded `loaded` should build on.
    pub(crate) fn newer_than(&self, loaded: &Record) -> Option<(&Record, &Arc<Data>)> {
        let chain = &*self.guard;
        let at = chain.records.iter().rposition(|r| r.data == loaded.data)?;
        let newest = chain.records.last()?;
        (at + 1 < chain.records.len()).then_some((newest, &chain.newest))
    }

    /// Notes that a compare-and-set replaced `expected` with `written` (whose data is `data`).
    pub(crate) fn wrote(&mut self, expected: &Record, written: Record, data: Arc<Data>) {
        let chain = &mut *self.guard;
        if chain.records.last().map(|r| &r.data) != Some(&expected.data) {
            chain.records.clear();
            chain.records.push(expected.clone());
        }
        if chain.records.len() >= CHAIN_LEN {
            chain.records.drain(..chain.records.len() / 2);
        }
        chain.records.push(written);
        chain.newest = data;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(s: &str) -> Record {
        Record::new(s, None)
    }

    #[tokio::test]
    async fn later_saves_build_on_the_newest_write() {
        let turns = SaveTurns::<()>::new();
        let mut t = turns.take("a", ()).await;
        assert!(t.newer_than(&rec("v0")).is_none());
        t.wrote(&rec("v0"), rec("v1"), Arc::default());
        t.wrote(&rec("v1"), rec("v2"), Arc::default());
        assert_eq!(t.newer_than(&rec("v0")).unwrap().0.data, "v2");
        assert_eq!(t.newer_than(&rec("v1")).unwrap().0.data, "v2");
        assert!(t.newer_than(&rec("v2")).is_none(), "already the newest");
        assert!(t.newer_than(&rec("other")).is_none(), "unknown: no guess");
        // A write over a record this chain does not end with starts a new chain.
        t.wrote(&rec("x0"), rec("x1"), Arc::default());
        assert!(t.newer_than(&rec("v0")).is_none());
        assert_eq!(t.newer_than(&rec("x0")).unwrap().0.data, "x1");
    }

    #[tokio::test]
    async fn a_turn_is_exclusive_per_id_and_forgotten_when_unused() {
        let turns = SaveTurns::new();
        let t = turns.take("a", ()).await;
        let other = turns.take("b", ()).await; // another session never waits
        let waiting = turns.take("a", ());
        tokio::pin!(waiting);
        assert!(
            futures_poll_once(waiting.as_mut()).await.is_none(),
            "second save of 'a' waits"
        );
        drop(t);
        let t2 = waiting.await;
        assert_eq!(t2.id(), "a");
        drop((t2, other));
        assert!(
            turns.shards.iter().all(|s| s.lock().unwrap().is_empty()),
            "no slot outlives its saves"
        );
    }

    #[tokio::test]
    async fn the_holder_takes_the_saves_queued_behind_it() {
        let turns = SaveTurns::new();
        let mut first = turns.take("a", 1).await;
        assert!(first.take_queued().is_empty(), "its own entry is not queued");
        let mut second = Box::pin(turns.take("a", 2));
        let mut third = Box::pin(turns.take("a", 3));
        assert!(futures_poll_once(second.as_mut()).await.is_none());
        assert!(futures_poll_once(third.as_mut()).await.is_none());
        let queued = first.take_queued();
        assert_eq!(
            queued.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [2, 3],
            "oldest first"
        );
        queued[0].1.done(); // the holder wrote 2's changes, not 3's
        drop(first);
        let mut second = second.await;
        assert!(second.saved_by_another());
        assert!(second.take_queued().is_empty());
        drop(second);
        let third = third.await;
        assert!(!third.saved_by_another(), "3 saves itself");
        drop(third);
        assert!(turns.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_up_its_place() {
        let turns = SaveTurns::new();
        let t = turns.take("a", ()).await;
        {
            let waiting = turns.take("a", ());
            tokio::pin!(waiting);
            assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        }
        let mut t = t;
        assert!(t.take_queued().is_empty(), "a cancelled save leaves nothing to write");
        drop(t);
        assert!(turns.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
