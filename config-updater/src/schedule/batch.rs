//! Batching: gather image bumps and decide when they go out, together, as one commit.
//!
//! Other image updaters commit every tag change on its own, and their scan interval does not
//! batch (image-automation-controller #168, #313), so a release train of ten images makes ten
//! commits and ten rollouts. Here bumps wait in [`Pending`] and a [`Batcher`] decides:
//!
//! * Nothing pending: [`Decision::Idle`].
//! * The **oldest** pending bump has waited `batch_delay` and the window (if any) is open:
//!   [`Decision::PushNow`] with **every** pending bump, including ones that arrived a moment
//!   ago. Bumps arriving within the delay of the first therefore share its commit.
//! * Otherwise [`Decision::WaitUntil`] the earliest instant worth deciding again: when the delay
//!   runs out, or the window's next opening at or after that. Outside the window everything
//!   stays pending; when it opens, it all goes as one batch.
//!
//! A newer bump for the same key (say, `(policy, file)`) replaces the older one but keeps its
//! `first_seen`: a repository that publishes a tag every minute would otherwise postpone the
//! push forever with a 5-minute delay. The delay measures how long a change has been *waiting*,
//! not how fresh the newest tag is.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::window::CompiledWindow;

/// One bump waiting to be pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange<K, C> {
    pub key: K,
    pub change: C,
    /// When a bump for this key was first recorded since the last push.
    pub first_seen: DateTime<Utc>,
    /// When the current `change` was recorded.
    pub last_seen: DateTime<Utc>,
}

/// What [`Pending::record`] did with a bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded<C> {
    /// The first pending bump for its key.
    Added,
    /// It replaced this older bump for the same key.
    Replaced(C),
    /// It was older than the bump already pending for its key, and was dropped (returned here).
    Stale(C),
}

/// The bumps waiting to be pushed, at most one per key. Plain in-memory state: the daemon owns
/// one, records bumps into it, and hands it to [`Batcher::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending<K: Ord, C> {
    by_key: BTreeMap<K, Slot<C>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot<C> {
    change: C,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

impl<K: Ord, C> Default for Pending<K, C> {
    fn default() -> Self {
        Pending {
            by_key: BTreeMap::new(),
        }
    }
}

impl<K: Ord, C> Pending<K, C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a bump seen at `seen`. A newer bump for a pending key replaces its change and
    /// keeps its `first_seen`; an older one (events can arrive out of order) is dropped.
    pub fn record(&mut self, key: K, change: C, seen: DateTime<Utc>) -> Recorded<C> {
        match self.by_key.get_mut(&key) {
            None => {
                self.by_key.insert(
                    key,
                    Slot {
                        change,
                        first_seen: seen,
                        last_seen: seen,
                    },
                );
                Recorded::Added
            }
            Some(slot) if seen >= slot.last_seen => {
                slot.last_seen = seen;
                Recorded::Replaced(std::mem::replace(&mut slot.change, change))
            }
            Some(_) => Recorded::Stale(change),
        }
    }

    /// Drops the pending bump for `key` (its policy was deleted, or the file already has it).
    pub fn withdraw(&mut self, key: &K) -> Option<PendingChange<K, C>>
    where
        K: Clone,
    {
        let slot = self.by_key.remove(key)?;
        Some(PendingChange {
            key: key.clone(),
            change: slot.change,
            first_seen: slot.first_seen,
            last_seen: slot.last_seen,
        })
    }

    /// Puts back a batch whose push failed, without overwriting bumps recorded meanwhile: for a
    /// key bumped again during the push, the newer change stays and the older `first_seen` wins,
    /// so the retry is not delayed again.
    pub fn requeue(&mut self, batch: Vec<PendingChange<K, C>>) {
        for PendingChange {
            key,
            change,
            first_seen,
            last_seen,
        } in batch
        {
            match self.by_key.get_mut(&key) {
                Some(slot) => {
                    slot.first_seen = slot.first_seen.min(first_seen);
                    if last_seen > slot.last_seen {
                        slot.change = change;
                        slot.last_seen = last_seen;
                    }
                }
                None => {
                    self.by_key.insert(
                        key,
                        Slot {
                            change,
                            first_seen,
                            last_seen,
                        },
                    );
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The pending bump for `key`, if any.
    pub fn get(&self, key: &K) -> Option<&C> {
        self.by_key.get(key).map(|slot| &slot.change)
    }

    /// When the pending bump for `key` was first seen, if one is pending.
    pub fn first_seen(&self, key: &K) -> Option<DateTime<Utc>> {
        self.by_key.get(key).map(|slot| slot.first_seen)
    }

    /// When the longest-waiting bump was first seen.
    pub fn oldest(&self) -> Option<DateTime<Utc>> {
        self.by_key.values().map(|slot| slot.first_seen).min()
    }

    /// Takes every pending bump, in key order.
    fn drain(&mut self) -> Vec<PendingChange<K, C>> {
        std::mem::take(&mut self.by_key)
            .into_iter()
            .map(|(key, s)| PendingChange {
                key,
                change: s.change,
                first_seen: s.first_seen,
                last_seen: s.last_seen,
            })
            .collect()
    }
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<K, C> {
    /// Push these (all that were pending, in key order) as one commit. They have been taken
    /// out of [`Pending`]; if the push fails, [`Pending::requeue`] them.
    PushNow { changes: Vec<PendingChange<K, C>> },
    /// Decide again at this instant (nothing changes before it unless a bump arrives).
    WaitUntil(DateTime<Utc>),
    /// Nothing is pending.
    Idle,
    /// Changes are pending but the window never opens again; they are kept, and the daemon
    /// should report the window as the problem.
    WindowNeverOpens,
}

/// The batching rule: a delay, and an optional window.
#[derive(Debug, Clone)]
pub struct Batcher {
    batch_delay: TimeDelta,
    window: Option<CompiledWindow>,
}

impl Batcher {
    /// `batch_delay` is how long the oldest bump waits for company; zero pushes at once.
    pub fn new(batch_delay: Duration, window: Option<CompiledWindow>) -> Self {
        // A delay beyond chrono's range (hundreds of millions of years) is "never".
        let batch_delay = TimeDelta::from_std(batch_delay).unwrap_or(TimeDelta::MAX);
        Batcher {
            batch_delay,
            window,
        }
    }

    pub fn window(&self) -> Option<&CompiledWindow> {
        self.window.as_ref()
    }

    /// Decides what to do at `now`; on [`Decision::PushNow`] the batch is taken from `pending`.
    pub fn decide<K: Ord, C>(
        &self,
        pending: &mut Pending<K, C>,
        now: DateTime<Utc>,
    ) -> Decision<K, C> {
        match self.next_push(pending, now) {
            NextPush::Nothing => Decision::Idle,
            NextPush::At(at) if at <= now => Decision::PushNow {
                changes: pending.drain(),
            },
            NextPush::At(at) => Decision::WaitUntil(at),
            NextPush::Never => Decision::WindowNeverOpens,
        }
    }

    /// When the pending bumps may go out, without taking them: for status ("next push at …")
    /// as well as for [`Batcher::decide`].
    pub fn next_push<K: Ord, C>(&self, pending: &Pending<K, C>, now: DateTime<Utc>) -> NextPush {
        let Some(oldest) = pending.oldest() else {
            return NextPush::Nothing;
        };
        let due = oldest
            .checked_add_signed(self.batch_delay)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let Some(window) = &self.window else {
            return NextPush::At(due);
        };
        // The push may happen at the first open instant once the delay has run out.
        let earliest = due.max(now);
        if window.is_open(earliest) {
            return NextPush::At(due);
        }
        window
            .next_open(earliest)
            .map_or(NextPush::Never, NextPush::At)
    }
}

/// When pending bumps may be pushed; see [`Batcher::next_push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextPush {
    /// Nothing is pending.
    Nothing,
    /// At this instant (already past when a push is due now).
    At(DateTime<Utc>),
    /// The window never opens again.
    Never,
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
