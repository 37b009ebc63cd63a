//! Pacing: slow the local senders of a recipient that falls behind, instead
//! of cutting a reader that keeps reading.
//!
//! The original daemon reads its clients slowly enough (one message per
//! event, and it stops reading all of them while its ordering layer holds
//! `WATER_MARK` messages) that a consumer which keeps reading rarely reaches
//! `MaxSessionMessages` queued messages. This daemon reads a flooding sender
//! much faster than a consumer can take the messages, so without pacing the
//! consumer is cut ("Connection closed by Spread") although it never stopped
//! reading. The rule, per local session R (the recipient):
//!
//! * **Congested**: when a message from a local session S is queued for R
//!   while R's socket is full and R then holds [`high_water`] (¼) of
//!   MaxSessionMessages messages or of MaxSessionBytes bytes
//!   ([`super::queues`]), R paces S: the engine stops parsing S's frames (the
//!   frames already read stay buffered) and the driver stops reading S's
//!   socket, so S blocks in its own write as it would on a slow daemon. A
//!   sender is never paced by itself, and a sender that is itself congested
//!   is not paced (it must go on to read, and may be blocked in a write).
//! * **Released**: when R's queue drains to [`low_water`] (⅛) of both, or
//!   R goes away, every sender R paces is released; a sender paced by nobody is
//!   read again (its buffered frames first).
//! * **Exempt**: a congested R whose socket took no byte for
//!   [`PACE_STALL`], or that stays congested for [`PACE_BEHIND_MAX`], has
//!   stopped reading or cannot keep up: it releases its senders and paces
//!   nobody until it drains to the low-water mark. It is then treated as the
//!   original treats a slow reader: cut when one more message is to be
//!   queued while it holds MaxSessionMessages and its socket is full.
//! * **Bound**: a reader that is congested and still reading is allowed up to
//!   [`PACE_HARD_FACTOR`] × MaxSessionMessages (messages from daemons or
//!   senders that cannot be paced keep arriving); beyond that it is cut too.
//!
//! Messages from other daemons cannot be paced here; nothing changes for
//! them. The engine checks congested sessions every [`PACE_CHECK`] through
//! [`Engine::next_timeout`] / [`Engine::on_timeout`].

use std::time::{Duration, Instant};

use super::session::{ConnId, Phase};
use super::{Engine, Ordering};

/// A congested reader that took no byte for this long has stopped reading.
pub const PACE_STALL: Duration = Duration::from_secs(2);
/// A reader congested for this long cannot keep up: its senders go free.
pub const PACE_BEHIND_MAX: Duration = Duration::from_secs(30);
/// How often congested readers are checked for progress.
pub const PACE_CHECK: Duration = Duration::from_millis(250);
/// A congested reader still reading may hold this many times
/// MaxSessionMessages before it is cut.
pub const PACE_HARD_FACTOR: usize = 2;
/// Frames parsed from one sender between deliveries (so that pacing takes
/// effect within a read buffer, not after it).
pub const PARSE_BATCH: usize = 64;

/// Queue length at which a recipient paces its local senders.
pub fn high_water(max_session_messages: usize) -> usize {
    (max_session_messages / 4).max(1)
}

/// Queue length at which a congested recipient releases its senders.
pub fn low_water(max_session_messages: usize) -> usize {
    high_water(max_session_messages) / 2
}

/// A session's pacing state, as sender and as recipient.
#[derive(Debug, Default)]
pub struct PaceState {
    /// As sender: how many congested recipients pace it (not read while > 0).
    pub paced_by: u32,
    /// As recipient: the senders it paces.
    pub pacing: Vec<ConnId>,
    /// As recipient: at or over the high-water mark and not yet drained.
    pub congested: bool,
    /// As recipient: stopped reading or too far behind; paces nobody.
    pub exempt: bool,
    /// When it became congested.
    pub since: Option<Instant>,
    /// Last check at which bytes had been written to it.
    pub progress_at: Option<Instant>,
    /// Bytes written to it, ever.
    pub written: u64,
    /// `written` at the last check.
    pub mark: u64,
}

impl<O: Ordering> Engine<O> {
    /// Whether the driver should leave `id`'s socket unread (a recipient of
    /// its messages is congested). [`Engine::take_resumed`] says when to read
    /// it again.
    pub fn read_paused(&self, id: ConnId) -> bool {
        self.session(id).is_some_and(|s| s.pace.paced_by > 0)
    }

    /// Sessions released from pacing since the last call: parse what they
    /// have buffered ([`Engine::on_received`]) and read their sockets again.
    pub fn take_resumed(&mut self, into: &mut Vec<ConnId>) {
        into.append(&mut self.resumed);
    }

    /// A frame from local session `from` was queued for `idx`, which now
    /// holds `queued` messages: pace `from` if `idx` is congested.
    pub(super) fn pace_after_enqueue(&mut self, idx: u32, from: u32, queued: usize) {
        let hwm = high_water(self.cfg.max_session_messages);
        let bytes_hwm = high_water(self.cfg.max_session_bytes);
        let Some(bytes) = self.slots.get(idx as usize).and_then(|x| x.sess.as_ref()).map(|s| s.queued_bytes) else {
            return;
        };
        if from == idx || (queued < hwm && bytes < bytes_hwm) {
            return;
        }
        let Some(now) = self.now else { return };
        let Some(from_id) = self.slots.get(from as usize).and_then(|x| x.sess.as_ref()) else { return };
        if from_id.phase != Phase::Op || from_id.pace.congested {
            return;
        }
        let from_id = from_id.id;
        let Some(r) = self.slot_mut(idx) else { return };
        if !r.blocked || r.pace.exempt || r.pace.pacing.contains(&from_id) {
            return;
        }
        if !r.pace.congested {
            r.pace.congested = true;
            r.pace.since = Some(now);
            r.pace.progress_at = Some(now);
            r.pace.mark = r.pace.written;
            let rid = r.id;
            self.congested.push(rid);
            if self.pace_check.is_none() {
                self.pace_check = Some(now + PACE_CHECK);
            }
        }
        let Some(r) = self.slot_mut(idx) else { return };
        r.pace.pacing.push(from_id);
        if let Some(s) = self.slot_mut(from) {
            s.pace.paced_by += 1;
        }
    }

    /// `n` bytes were written to `idx`: release its senders once it drained.
    pub(super) fn pace_after_written(&mut self, idx: u32, n: usize) {
        let lwm = low_water(self.cfg.max_session_messages);
        let bytes_lwm = low_water(self.cfg.max_session_bytes);
        let Some(s) = self.slot_mut(idx) else { return };
        s.pace.written += n as u64;
        if s.pace.congested && s.out.len() <= lwm && s.queued_bytes <= bytes_lwm {
            s.pace.congested = false;
            s.pace.exempt = false;
            s.pace.since = None;
            self.pace_release(idx);
        }
    }

    /// Release every sender `idx` paces (it drained, went away or is exempt).
    pub(super) fn pace_release(&mut self, idx: u32) {
        let Some(s) = self.slot_mut(idx) else { return };
        if s.pace.pacing.is_empty() {
            return;
        }
        let senders = std::mem::take(&mut s.pace.pacing);
        for sid in &senders {
            let Some(x) = self.sess_mut(*sid) else { continue };
            x.pace.paced_by = x.pace.paced_by.saturating_sub(1);
            if x.pace.paced_by == 0 && x.phase == Phase::Op {
                self.resumed.push(*sid);
            }
        }
        // Keep the allocation for the next congestion.
        let mut senders = senders;
        senders.clear();
        if let Some(s) = self.slot_mut(idx) {
            s.pace.pacing = senders;
        }
    }

    /// Whether a reader with `queued` messages and a full socket is cut when
    /// one more message is to be queued.
    pub(super) fn pace_cuts(&self, idx: u32, queued: usize) -> bool {
        let max = self.cfg.max_session_messages;
        let Some(s) = self.slots.get(idx as usize).and_then(|x| x.sess.as_ref()) else { return false };
        if s.pace.congested && !s.pace.exempt {
            queued >= max.saturating_mul(PACE_HARD_FACTOR)
        } else {
            queued >= max
        }
    }

    /// When the next pacing check is due.
    pub(super) fn pace_deadline(&mut self) -> Option<Instant> {
        if self.congested.is_empty() {
            self.pace_check = None;
        }
        self.pace_check
    }

    /// Check the congested readers: a stalled one, or one behind for too
    /// long, becomes exempt and releases its senders.
    pub(super) fn pace_on_timeout(&mut self, now: Instant) {
        if self.pace_check.is_none_or(|t| t > now) {
            return;
        }
        let mut list = std::mem::take(&mut self.congested);
        list.retain(|&id| {
            let Some(s) = self.sess_mut(id) else { return false };
            if !s.pace.congested || s.phase != Phase::Op {
                return false;
            }
            if s.pace.exempt {
                return true;
            }
            if s.pace.written != s.pace.mark {
                s.pace.mark = s.pace.written;
                s.pace.progress_at = Some(now);
            }
            let stalled = s.pace.progress_at.is_some_and(|t| now.duration_since(t) >= PACE_STALL);
            let behind = s.pace.since.is_some_and(|t| now.duration_since(t) >= PACE_BEHIND_MAX);
            if stalled || behind {
                s.pace.exempt = true;
                tracing::info!(
                    target: "spread::session",
                    "session {} {} with {} messages queued: its senders are no longer paced",
                    String::from_utf8_lossy(&s.name),
                    if stalled { "stopped reading" } else { "stays behind" },
                    s.out.len()
                );
                let idx = id.idx;
                self.pace_release(idx);
            }
            true
        });
        // Sessions that became congested during the checks were pushed to
        // the (now empty) field.
        list.append(&mut self.congested);
        self.congested = list;
        self.pace_check = if self.congested.is_empty() { None } else { Some(now + PACE_CHECK) };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use spread_wire::consts::*;
    use spread_wire::names::name32;

    use super::super::tests::{frame, login, pump, pump_hold};
    use super::super::{ConnId, Engine, EngineConfig};
    use super::*;

    const MAX: usize = 40;
    /// Bytes of one flood frame (header, one group, 100-byte body).
    const FRAME: usize = 48 + 32 + 100;

    fn engine() -> Engine {
        let mut c = EngineConfig::single(b"d1", 7, 1);
        c.max_session_messages = MAX;
        Engine::new(c)
    }

    fn join(e: &mut Engine, now: Instant, id: ConnId, pg: &str, g: &str, out: &mut HashMap<ConnId, Vec<u8>>) {
        e.on_data(now, id, &frame(JOIN_MESS, pg, g, b""));
        pump(e, &[], out);
        out.clear();
    }

    /// A client sending `n` numbered 100-byte messages to a group, as fast as
    /// the daemon reads it: ten frames per read, none while it is paced.
    struct Flooder {
        id: ConnId,
        data: Vec<u8>,
        pos: usize,
    }

    impl Flooder {
        fn new(id: ConnId, pg: &str, g: &str, n: u32) -> Flooder {
            let mut data = Vec::new();
            for i in 0..n {
                let mut body = vec![0u8; 100];
                body[..4].copy_from_slice(&i.to_le_bytes());
                data.extend(frame(AGREED_MESS, pg, g, &body));
            }
            Flooder { id, data, pos: 0 }
        }

        /// The daemon reads it once, unless it is paced.
        fn step(&mut self, e: &mut Engine, now: Instant) {
            self.step_upto(e, now, 10);
        }

        /// The same with at most `k` frames.
        fn step_upto(&mut self, e: &mut Engine, now: Instant, k: usize) {
            if e.read_paused(self.id) || self.done() || k == 0 {
                return;
            }
            let end = (self.pos + k * FRAME).min(self.data.len());
            e.on_data(now, self.id, &self.data[self.pos..end]);
            self.pos = end;
        }

        fn done(&self) -> bool {
            self.pos == self.data.len()
        }
    }

    /// The client of `id` reads `frames` queued frames (its socket took
    /// them, and is full again).
    fn read_some(e: &mut Engine, id: ConnId, frames: usize, into: &mut Vec<u8>) {
        let mut v = Vec::new();
        e.out_slices(id, &mut v, frames);
        let bytes: Vec<u8> = v.iter().flat_map(|s| s.iter().copied()).collect();
        e.on_written(id, bytes.len());
        e.set_write_blocked(id, true);
        into.extend_from_slice(&bytes);
    }

    /// What a driver does with released senders; returns them.
    fn resume(e: &mut Engine, now: Instant) -> Vec<ConnId> {
        let mut ids = Vec::new();
        e.take_resumed(&mut ids);
        for &id in &ids {
            e.on_received(now, id);
        }
        ids
    }

    /// The numbers of the flood messages (100-byte bodies) in a stream of
    /// frames; other frames (membership notices) are skipped.
    fn numbers(mut stream: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        while !stream.is_empty() {
            let ng = i32::from_le_bytes(stream[36..40].try_into().unwrap()) as usize;
            let len = i32::from_le_bytes(stream[44..48].try_into().unwrap()) as usize;
            let body = &stream[48 + 32 * ng..48 + 32 * ng + len];
            if len == 100 {
                v.push(u32::from_le_bytes(body[..4].try_into().unwrap()));
            }
            stream = &stream[48 + 32 * ng + len..];
        }
        v
    }

    /// A reader that takes a few messages at a time from a sender that
    /// floods it is never cut: the sender is paced, the reader's queue stays
    /// near the high-water mark, and every message arrives in order.
    #[test]
    fn reader_that_keeps_reading_is_not_cut() {
        let now = Instant::now();
        let mut e = engine();
        let mut out = HashMap::new();
        let s = login(&mut e, now, "s", &mut out);
        let r = login(&mut e, now, "r", &mut out);
        join(&mut e, now, r, "#r#d1", "g", &mut out);
        const N: u32 = 2000;
        let mut f = Flooder::new(s, "#s#d1", "g", N);
        let mut got = Vec::new();
        let (mut paced, mut most) = (0, 0);
        for _ in 0..10 * N {
            f.step(&mut e, now);
            assert!(pump_hold(&mut e, &[r], &mut out).is_empty(), "nothing is closed");
            paced += e.read_paused(s) as u32;
            most = most.max(e.session(r).unwrap().out.len());
            read_some(&mut e, r, 3, &mut got);
            resume(&mut e, now);
            if got.len() == N as usize * FRAME {
                break;
            }
        }
        assert_eq!(numbers(&got), (0..N).collect::<Vec<_>>());
        assert!(paced > 100, "the sender was paced ({paced} times)");
        assert!(most <= 2 * high_water(MAX), "queue stayed near the high-water mark: {most}");
        assert_eq!(e.stats().sessions_killed, 0);
    }

    /// A reader that stops reading is released after PACE_STALL and then cut
    /// at MaxSessionMessages as the original cuts it; the sender goes on and
    /// a witness in the group gets every message.
    #[test]
    fn stalled_reader_is_cut_and_the_sender_goes_on() {
        let t0 = Instant::now();
        let mut e = engine();
        let mut out = HashMap::new();
        let s = login(&mut e, t0, "s", &mut out);
        let r = login(&mut e, t0, "r", &mut out);
        let w = login(&mut e, t0, "w", &mut out);
        join(&mut e, t0, r, "#r#d1", "g", &mut out);
        join(&mut e, t0, w, "#w#d1", "g", &mut out);
        out.clear();
        const N: u32 = 500;
        let mut f = Flooder::new(s, "#s#d1", "g", N);
        for _ in 0..N {
            f.step(&mut e, t0);
            assert!(pump_hold(&mut e, &[r], &mut out).is_empty());
        }
        assert!(e.read_paused(s), "the stalled reader paces the sender at first");
        let queued = e.session(r).unwrap().out.len();
        assert!((high_water(MAX)..MAX).contains(&queued), "{queued}");
        // Still paced until PACE_STALL has passed without a byte written.
        let mut t = t0;
        while t < t0 + PACE_STALL - PACE_CHECK {
            t += PACE_CHECK / 2;
            e.on_timeout(t);
            assert!(resume(&mut e, t).is_empty(), "released too early, at {:?}", t - t0);
        }
        let mut closed = Vec::new();
        let mut released = false;
        while !f.done() || t < t0 + PACE_STALL + 2 * PACE_CHECK {
            t += PACE_CHECK / 2;
            e.on_timeout(t);
            released |= !resume(&mut e, t).is_empty();
            f.step(&mut e, t);
            closed.extend(pump_hold(&mut e, &[r], &mut out));
        }
        assert!(released, "released after PACE_STALL");
        assert_eq!(closed, vec![r], "the stalled reader is cut, nobody else");
        assert!(!e.read_paused(s));
        assert_eq!(numbers(&out[&w][..]), (0..N).collect::<Vec<_>>(), "the witness got everything");
    }

    /// A reader that reads, but too slowly to ever drain (a few bytes a
    /// second), is released after PACE_BEHIND_MAX and then cut; not before.
    #[test]
    fn reader_behind_for_too_long_is_cut() {
        let t0 = Instant::now();
        let mut e = engine();
        let mut out = HashMap::new();
        let s = login(&mut e, t0, "s", &mut out);
        let r = login(&mut e, t0, "r", &mut out);
        join(&mut e, t0, r, "#r#d1", "g", &mut out);
        let mut f = Flooder::new(s, "#s#d1", "g", 5000);
        let mut got: Vec<u8> = Vec::new();
        let mut t = t0;
        let mut cut_at = None;
        while t < t0 + PACE_BEHIND_MAX + Duration::from_secs(2) {
            f.step(&mut e, t);
            if !pump_hold(&mut e, &[r], &mut out).is_empty() {
                cut_at = Some(t - t0);
                break;
            }
            // Ten bytes a second: reading, never draining.
            t += Duration::from_millis(200);
            if (t - t0).as_millis().is_multiple_of(1000) {
                let mut v = Vec::new();
                e.out_slices(r, &mut v, 1);
                got.extend_from_slice(&v[0][..10]);
                e.on_written(r, 10);
                e.set_write_blocked(r, true);
            }
            e.on_timeout(t);
            resume(&mut e, t);
        }
        let cut_at = cut_at.expect("cut");
        assert!(cut_at >= PACE_BEHIND_MAX, "cut after {cut_at:?}");
        assert!(got.len() >= 290, "it was reading all along: {} bytes", got.len());
    }

    /// Pacing one sender leaves the others alone: a sender to another group
    /// is never paced, and its reader gets everything at once.
    #[test]
    fn other_groups_are_not_paced() {
        let now = Instant::now();
        let mut e = engine();
        let mut out = HashMap::new();
        let s1 = login(&mut e, now, "s1", &mut out);
        let r1 = login(&mut e, now, "r1", &mut out);
        let s2 = login(&mut e, now, "s2", &mut out);
        let r2 = login(&mut e, now, "r2", &mut out);
        join(&mut e, now, r1, "#r1#d1", "g1", &mut out);
        join(&mut e, now, r2, "#r2#d1", "g2", &mut out);
        let mut f1 = Flooder::new(s1, "#s1#d1", "g1", 300);
        let mut f2 = Flooder::new(s2, "#s2#d1", "g2", 300);
        let mut paced1 = false;
        while !f2.done() {
            f1.step(&mut e, now);
            f2.step(&mut e, now);
            assert!(pump_hold(&mut e, &[r1], &mut out).is_empty());
            assert!(!e.read_paused(s2));
            paced1 |= e.read_paused(s1);
        }
        assert!(paced1);
        assert_eq!(numbers(&out[&r2]), (0..300).collect::<Vec<_>>());
        // r1 drains: s1 is released and the rest of its frames go through.
        let mut got = Vec::new();
        for _ in 0..1000 {
            read_some(&mut e, r1, 5, &mut got);
            resume(&mut e, now);
            f1.step(&mut e, now);
            assert!(pump_hold(&mut e, &[r1], &mut out).is_empty());
            if got.len() == 300 * FRAME {
                break;
            }
        }
        assert_eq!(numbers(&got), (0..300).collect::<Vec<_>>());
    }

    /// Members that flood a group they all read, each staying at most a
    /// window ahead of the other's messages it has read (spflooder -n 2),
    /// pace each other without a deadlock (nobody is paced by itself, a
    /// congested sender is not paced) and both get every message.
    #[test]
    fn two_flooders_in_one_group_both_complete() {
        let now = Instant::now();
        let mut e = engine();
        let mut out = HashMap::new();
        let a = login(&mut e, now, "a", &mut out);
        let b = login(&mut e, now, "b", &mut out);
        join(&mut e, now, a, "#a#d1", "g", &mut out);
        join(&mut e, now, b, "#b#d1", "g", &mut out);
        out.clear();
        const N: u32 = 1000;
        let mut fa = Flooder::new(a, "#a#d1", "g", N);
        let mut fb = Flooder::new(b, "#b#d1", "g", N);
        let (mut ga, mut gb) = (Vec::new(), Vec::new());
        let mut paced = 0;
        const WINDOW: usize = 8;
        let from = |got: &[u8], who: &str| {
            got.chunks(FRAME).filter(|f| f.len() == FRAME && f[4..36] == name32(who.as_bytes())).count()
        };
        for _ in 0..20 * N {
            let ahead_a = (fa.pos / FRAME).saturating_sub(from(&ga, "#b#d1"));
            fa.step_upto(&mut e, now, WINDOW.saturating_sub(ahead_a).min(10));
            let ahead_b = (fb.pos / FRAME).saturating_sub(from(&gb, "#a#d1"));
            fb.step_upto(&mut e, now, WINDOW.saturating_sub(ahead_b).min(10));
            assert!(pump_hold(&mut e, &[a, b], &mut out).is_empty(), "nothing is closed");
            assert!(!(e.read_paused(a) && e.read_paused(b)), "not both paced");
            paced += (e.read_paused(a) || e.read_paused(b)) as u32;
            read_some(&mut e, a, 3, &mut ga);
            read_some(&mut e, b, 3, &mut gb);
            resume(&mut e, now);
            if ga.len() == 2 * N as usize * FRAME && gb.len() == ga.len() {
                break;
            }
        }
        assert!(paced > 0);
        assert_eq!(ga.len(), 2 * N as usize * FRAME);
        assert_eq!(ga, gb, "same order at both");
        assert_eq!(e.stats().sessions_killed, 0);
    }
}
