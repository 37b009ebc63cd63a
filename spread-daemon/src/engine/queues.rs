//! Queue bounds: what a session, and all sessions together, may hold in
//! memory, and when the daemon hands memory back to the system.
//!
//! The original bounds a session's queue only by count (`MaxSessionMessages`,
//! 1000): with 100 KB messages a slow reader holds up to 100 MB, and the
//! daemon never returns what a flood took. Here:
//!
//! * **Per session**: a session whose socket is full is cut when one more
//!   message is to be queued and it holds `MaxSessionMessages` messages (the
//!   original's rule, see [`super::pacing`] for readers that keep reading)
//!   *or* when that message would take its queue past
//!   [`EngineConfig::max_session_bytes`] (`MaxSessionBytes`, default
//!   [`DEFAULT_MAX_SESSION_BYTES`]). A quarter of either bound makes it
//!   congested, pacing its local senders.
//! * **All sessions**: when a message would take the bytes queued for all
//!   sessions past [`EngineConfig::max_queued_bytes`] (`MaxQueuedBytes`,
//!   default [`DEFAULT_MAX_QUEUED_BYTES`]), a recipient whose socket is full
//!   is cut instead of growing the total. (A message shared by several
//!   recipients counts once per recipient: the bound is conservative.)
//! * **Returning memory**: the engine counts the bytes written or dropped
//!   ([`Engine::memory_released`]); the driver asks the allocator to return
//!   free memory to the system (`malloc_trim`) once at least [`TRIM_MIN`]
//!   were released, at most once a second.
//!
//! [`EngineConfig::max_session_bytes`]: super::EngineConfig::max_session_bytes
//! [`EngineConfig::max_queued_bytes`]: super::EngineConfig::max_queued_bytes

use super::{Engine, Ordering};

/// Default `MaxSessionBytes`: 32 MiB (room for spflooder's 200 outstanding
/// messages of the largest size, 28.8 MB).
pub const DEFAULT_MAX_SESSION_BYTES: usize = 32 << 20;
/// Default `MaxQueuedBytes`: 256 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 256 << 20;
/// Bytes released after which the driver returns memory to the system.
pub const TRIM_MIN: usize = 4 << 20;

impl<O: Ordering> Engine<O> {
    /// Bytes queued for all sessions.
    pub fn queued_total(&self) -> usize {
        self.queued_total
    }

    /// Bytes written or dropped since [`Engine::memory_trimmed`].
    pub fn memory_released(&self) -> usize {
        self.released
    }

    /// The driver returned free memory to the system.
    pub fn memory_trimmed(&mut self) {
        self.released = 0;
    }

    pub(super) fn note_released(&mut self, n: usize) {
        self.released = self.released.saturating_add(n);
    }

    /// Whether queueing `len` more bytes for the session in `idx` (whose
    /// socket is full) breaks its byte bound or the total.
    pub(super) fn bytes_cut(&self, idx: u32, len: usize) -> bool {
        let Some(s) = self.slots.get(idx as usize).and_then(|x| x.sess.as_ref()) else { return false };
        s.queued_bytes + len > self.cfg.max_session_bytes || self.queued_total + len > self.cfg.max_queued_bytes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use spread_wire::consts::*;

    use super::super::tests::{frame, login, pump, pump_hold};
    use super::super::{ConnId, Engine, EngineConfig};

    fn engine(session: usize, total: usize) -> Engine {
        let mut c = EngineConfig::single(b"d1", 7, 1);
        c.max_session_bytes = session;
        c.max_queued_bytes = total;
        Engine::new(c)
    }

    /// Let time pass in PACE_CHECK steps until `s` is no longer paced (its
    /// stalled readers are exempt) and feed it what it had buffered.
    fn wait_unpaced(e: &mut Engine, t: &mut Instant, s: ConnId) {
        for _ in 0..100 {
            if !e.read_paused(s) {
                break;
            }
            *t += super::super::pacing::PACE_CHECK;
            e.on_timeout(*t);
        }
        let mut ids = Vec::new();
        e.take_resumed(&mut ids);
        for id in ids {
            e.on_received(*t, id);
        }
    }

    /// 10 KB messages to a reader whose socket is full (once it has stalled
    /// long enough not to pace the sender): it is cut at the message that
    /// would take its queue past MaxSessionBytes, long before
    /// MaxSessionMessages; the total counts what is queued.
    #[test]
    fn a_blocked_reader_is_cut_at_its_byte_bound() {
        let mut now = Instant::now();
        let mut e = engine(100_000, 1 << 30);
        let mut out = HashMap::new();
        let s = login(&mut e, now, "s", &mut out);
        let r = login(&mut e, now, "r", &mut out);
        e.on_data(now, r, &frame(JOIN_MESS, "#r#d1", "g", b""));
        pump(&mut e, &[], &mut out);
        let body = vec![1u8; 10_000];
        let len = frame(RELIABLE_MESS, "#s#d1", "g", &body).len();
        let mut cut_after = None;
        for i in 0..50 {
            e.on_data(now, s, &frame(RELIABLE_MESS, "#s#d1", "g", &body));
            wait_unpaced(&mut e, &mut now, s);
            if !pump_hold(&mut e, &[r], &mut out).is_empty() {
                cut_after = Some(i);
                break;
            }
            assert_eq!(e.queued_total(), e.session(r).unwrap().out_bytes());
            assert!(e.session(r).unwrap().out_bytes() <= 100_000);
        }
        assert_eq!(cut_after, Some(100_000 / len), "cut at the message past the bound");
        assert_eq!(e.queued_total(), 0, "the cut session's queue is freed");
        assert!(e.memory_released() >= 90_000);
    }

    /// Two readers with full sockets share MaxQueuedBytes: the one whose
    /// message would take the total past it is cut, although its own queue
    /// is under its bound; a reader that keeps up is not.
    #[test]
    fn the_total_bound_cuts_a_blocked_reader() {
        let mut now = Instant::now();
        let mut e = engine(100_000, 150_000);
        let mut out = HashMap::new();
        let s = login(&mut e, now, "s", &mut out);
        let r1 = login(&mut e, now, "r1", &mut out);
        let r2 = login(&mut e, now, "r2", &mut out);
        let fast = login(&mut e, now, "f", &mut out);
        for (id, pg) in [(r1, "#r1#d1"), (r2, "#r2#d1"), (fast, "#f#d1")] {
            e.on_data(now, id, &frame(JOIN_MESS, pg, "g", b""));
        }
        pump(&mut e, &[], &mut out);
        out.clear();
        let body = vec![2u8; 10_000];
        let mut closed = Vec::new();
        for _ in 0..9 {
            e.on_data(now, s, &frame(RELIABLE_MESS, "#s#d1", "g", &body));
            wait_unpaced(&mut e, &mut now, s);
            closed.extend(pump_hold(&mut e, &[r1, r2], &mut out));
        }
        // The eighth message would take the total to 8 × 2 × 10,080 bytes.
        assert_eq!(closed.len(), 1, "one of the two is cut: {closed:?}");
        let kept = if closed[0] == r1 { r2 } else { r1 };
        assert!(e.queued_total() <= 150_000);
        assert_eq!(e.session(kept).unwrap().out.len(), 9);
        assert_eq!(out[&fast].len(), 9 * (48 + 32 + 10_000));
    }
}
