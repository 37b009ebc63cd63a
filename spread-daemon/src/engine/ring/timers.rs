//! The ring's timers: one deadline per kind; arming an armed timer replaces
//! it, as `E_queue` does (§5.9).

use std::time::Instant;

/// Every timer the ring uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Token loss (`Token_timeout`, or `Form_timeout` while forming).
    TokenLoss,
    /// The leader's token retransmission (`Hurry_timeout`).
    Hurry,
    /// ALIVE to my segment (`Alive_timeout`, first at once).
    Alive,
    /// End of SEG: gather or be represented (`Seg_timeout`).
    GatherOrRep,
    /// REPRESENTED back to SEG (`Rep_timeout`).
    RepToSeg,
    /// JOIN to the potential representatives (`Join_timeout`, first at once).
    SendJoin,
    /// End of GATHER (`Gather_timeout`).
    FormOrFail,
    /// The leader's probe for daemons outside the ring (`Lookup_timeout`).
    Lookup,
    /// Ours only: the leader's light probe of configured daemons outside
    /// the ring, which does not leave OP ([`Params::merge_probe`]).
    ///
    /// [`Params::merge_probe`]: super::Params::merge_probe
    MergeProbe,
    /// Zero-delay delivery passes after the delivery threshold is lowered.
    DeliverReliable,
    DeliverAgreed,
}

const ALL: [Timer; 11] = [
    Timer::TokenLoss,
    Timer::Hurry,
    Timer::Alive,
    Timer::GatherOrRep,
    Timer::RepToSeg,
    Timer::SendJoin,
    Timer::FormOrFail,
    Timer::Lookup,
    Timer::MergeProbe,
    Timer::DeliverReliable,
    Timer::DeliverAgreed,
];

#[derive(Clone, Debug, Default)]
pub struct Timers {
    at: [Option<Instant>; ALL.len()],
}

impl Timers {
    pub fn arm(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = Some(at);
    }

    pub fn cancel(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    pub fn is_armed(&self, t: Timer) -> bool {
        self.at[t as usize].is_some()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The earliest timer due at `now` (disarmed), ties in declaration order.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let mut best: Option<(Instant, Timer)> = None;
        for t in ALL {
            if let Some(at) = self.at[t as usize] {
                if at <= now && best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, t));
                }
            }
        }
        let (_, t) = best?;
        self.at[t as usize] = None;
        Some(t)
    }
}
