//! How fast to heal: at once, unless the same object keeps drifting right after each heal —
//! another actor is fighting over a field. Then heal with a growing delay (2 s, 6 s, 18 s… up to
//! 5 min, as Argo CD's self-heal backoff) and say so once, instead of fighting in a hot loop.

use std::time::{Duration, Instant};

/// Heals that go out at once, however fast the drift comes back.
pub const FREE_HEALS: u32 = 2;
/// Drift within this long after a heal continues a fight; later, the count starts again.
pub const FIGHT_WINDOW: Duration = Duration::from_secs(30);
/// The first delayed heal waits this long; each next one [`FACTOR`] times longer.
pub const BASE: Duration = Duration::from_secs(2);
pub const FACTOR: u32 = 3;
/// The longest delay between heals of one object.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// One object's recent heals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fight {
    /// Heals in a row, each followed by drift within [`FIGHT_WINDOW`].
    streak: u32,
    last_heal: Option<Instant>,
    /// The streak as it stood when the drift being healed was seen (a delayed heal happens long
    /// after the previous one, yet continues the fight).
    seen_streak: Option<u32>,
}

/// When to heal a drift seen now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub delay: Duration,
    /// This drift is the one that turns a run of heals into a fight (report it once).
    pub fight_started: bool,
}

impl Fight {
    /// The pace for a drift seen at `now`.
    pub fn pace(&self, now: Instant) -> Pace {
        let streak = self.streak_at(now);
        if streak < FREE_HEALS {
            return Pace {
                delay: Duration::ZERO,
                fight_started: false,
            };
        }
        let power = streak - FREE_HEALS;
        let delay = FACTOR
            .checked_pow(power)
            .and_then(|factor| BASE.checked_mul(factor))
            .map_or(MAX_DELAY, |delay| delay.min(MAX_DELAY));
        Pace {
            delay,
            fight_started: streak == FREE_HEALS,
        }
    }

    /// A drift seen at `now`: its pace, remembered for [`Fight::healed`].
    pub fn seen(&mut self, now: Instant) -> Pace {
        self.seen_streak = Some(self.streak_at(now));
        self.pace(now)
    }

    /// Records a heal done at `now`.
    pub fn healed(&mut self, now: Instant) {
        let streak = self
            .seen_streak
            .take()
            .unwrap_or_else(|| self.streak_at(now));
        self.streak = streak + 1;
        self.last_heal = Some(now);
    }

    /// Whether a fight is on (heals are being delayed).
    #[cfg(test)]
    pub fn fighting(&self, now: Instant) -> bool {
        self.streak_at(now) >= FREE_HEALS
    }

    fn streak_at(&self, now: Instant) -> u32 {
        match self.last_heal {
            Some(at) if now.saturating_duration_since(at) <= FIGHT_WINDOW => self.streak,
            _ => 0,
        }
    }
}
