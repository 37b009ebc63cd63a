//! Admission: who gets a session slot, and how long a connection may take
//! to say who it is.
//!
//! The original counts every accepted connection against its 997 session
//! slots from the moment of `accept`, so connections that never finish
//! their handshake (a port scanner, a stuck or hostile program) fill the
//! slots and real clients get `REJECT_QUOTA` until they are closed. Here a
//! connection still in its handshake is *connecting* and takes no slot; it
//! lives in a separate budget:
//!
//! * at most [`EngineConfig::connect_budget`] connections are connecting at
//!   once; one more evicts the oldest (closed without a reply);
//! * a connection has [`EngineConfig::connect_timeout`] to send its connect
//!   request and [`EngineConfig::handshake_timeout`] to finish the
//!   handshake (both from the accept), then it is closed;
//! * slots are counted over the sessions that finished their handshake
//!   (operational, or killed and waiting for their KILL to be ordered).
//!   With all [`EngineConfig::max_sessions`] taken, a new connection gets
//!   `REJECT_QUOTA` at once, as from the original; a connect request, or the
//!   end of an authentication, finding them all taken gets it instead of
//!   the next handshake step.
//!
//! [`EngineConfig::connect_budget`]: super::EngineConfig::connect_budget
//! [`EngineConfig::connect_timeout`]: super::EngineConfig::connect_timeout
//! [`EngineConfig::handshake_timeout`]: super::EngineConfig::handshake_timeout
//! [`EngineConfig::max_sessions`]: super::EngineConfig::max_sessions

use std::time::Instant;

use super::session::{ConnId, Phase};
use super::{Engine, Ordering};

/// Default of [`super::EngineConfig::connect_budget`].
pub const CONNECT_BUDGET: usize = 128;

impl<O: Ordering> Engine<O> {
    /// Sessions past their handshake (they hold session slots).
    pub(super) fn slots_used(&self) -> usize {
        self.live - self.connecting
    }

    /// Make room in the connect budget for one more connection (evicting the
    /// oldest connecting one if it is full) and count it.
    pub(super) fn admit_connecting(&mut self, now: Instant, id: ConnId) {
        while self.connecting >= self.cfg.connect_budget.max(1) {
            let Some((_, old)) = self.connect_queue.pop_front() else { break };
            if self.session(old).is_some_and(|s| s.connecting) {
                tracing::debug!(target: "spread::session", "connection {}: evicted before its connect request", old.idx);
                self.drop_conn(old.idx, false);
            }
        }
        self.connecting += 1;
        self.connect_queue.push_back((now + self.cfg.connect_timeout, id));
    }

    /// The connection in `idx` leaves the connect budget (its handshake
    /// finished, or it goes away).
    pub(super) fn uncount_connecting(&mut self, idx: u32) {
        if let Some(s) = self.slot_mut(idx) {
            if std::mem::replace(&mut s.connecting, false) {
                self.connecting -= 1;
            }
        }
    }

    /// When the oldest connection still waiting for its connect request
    /// must have sent it. (The queue holds at most the budget, in accept
    /// order, so deadlines rise along it.)
    pub(super) fn connect_deadline(&mut self) -> Option<Instant> {
        while let Some(&(_, id)) = self.connect_queue.front() {
            if self.session(id).is_some_and(|s| s.connecting) {
                break;
            }
            self.connect_queue.pop_front();
        }
        let waiting = |id: ConnId| self.session(id).is_some_and(|s| s.connecting && s.phase == Phase::Connect);
        self.connect_queue.iter().find(|&&(_, id)| waiting(id)).map(|&(t, _)| t)
    }

    /// Close the connections whose connect request is overdue; forget the
    /// ones no longer connecting.
    pub(super) fn connect_on_timeout(&mut self, now: Instant) {
        let mut overdue = Vec::new();
        self.connect_queue.retain(|&(t, id)| {
            let Some(s) = self.slots.get(id.idx as usize).filter(|x| x.gen == id.gen).and_then(|x| x.sess.as_ref())
            else {
                return false;
            };
            if !s.connecting {
                return false;
            }
            if t <= now && s.phase == Phase::Connect {
                overdue.push(id);
                return false;
            }
            true
        });
        for id in overdue {
            tracing::debug!(target: "spread::session", "connection {}: no connect request in time", id.idx);
            self.drop_conn(id.idx, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use spread_wire::consts::REJECT_QUOTA;

    use super::super::tests::login;
    use super::super::{Accepted, Action, ConnId, ConnKind, Engine, EngineConfig};

    fn engine(max_sessions: usize, budget: usize) -> Engine {
        let mut c = EngineConfig::single(b"d1", 7, 1);
        c.max_sessions = max_sessions;
        c.connect_budget = budget;
        Engine::new(c)
    }

    fn silent(e: &mut Engine, now: Instant) -> ConnId {
        match e.accept(now, ConnKind::Tcp, None) {
            Accepted::Conn(id) => id,
            Accepted::Rejected(b) => panic!("rejected: {b:?}"),
        }
    }

    fn closed(e: &mut Engine) -> Vec<ConnId> {
        let mut v = Vec::new();
        while let Some(a) = e.poll_action() {
            if let Action::Close { id, .. } = a {
                v.push(id);
            }
        }
        v
    }

    /// Connections that never send a byte take no session slot: with many
    /// more of them than slots, a real client still gets its session, the
    /// oldest silent ones are evicted, and the budget is never exceeded.
    #[test]
    fn silent_connections_never_take_the_slots_of_real_clients() {
        let now = Instant::now();
        let mut e = engine(10, 8);
        let mut out = HashMap::new();
        let real = login(&mut e, now, "first", &mut out);
        let storm: Vec<ConnId> = (0..100).map(|_| silent(&mut e, now)).collect();
        assert!(e.num_connections() <= 1 + 8, "{} connections held", e.num_connections());
        let evicted = closed(&mut e);
        assert_eq!(evicted, storm[..92].to_vec(), "the oldest are evicted, in order");
        // A real client arriving now evicts one more silent connection and
        // completes its handshake.
        let late = silent(&mut e, now);
        let mut req = vec![5, 0, 1, 0, 4];
        req.extend_from_slice(b"late");
        e.on_data(now, late, &req);
        let mut choice = [0u8; spread_wire::handshake::AUTH_CHOICE_LEN];
        choice[..4].copy_from_slice(b"NULL");
        e.on_data(now, late, &choice);
        assert_eq!(closed(&mut e), vec![storm[92]]);
        assert!(e.session(late).is_some() && e.session(real).is_some());
        assert_eq!(e.num_sessions(), 2);
        // Ten real sessions fit although 7 silent ones are still connecting.
        for i in 0..8 {
            login(&mut e, now, &format!("u{i}"), &mut out);
        }
        assert_eq!(e.num_sessions(), 10);
        assert_eq!(e.num_connections(), 17);
    }

    /// A connection that sends nothing is closed after connect_timeout; one
    /// that sent its request is not (it has the whole handshake time).
    #[test]
    fn silent_connections_are_closed_after_the_connect_timeout() {
        let t0 = Instant::now();
        let mut e = engine(10, 8);
        let quiet = silent(&mut e, t0);
        let talker = silent(&mut e, t0);
        e.on_data(t0, talker, &[5, 0, 1, 0, 1, b'x']);
        let _ = closed(&mut e);
        let timeout = e.config().connect_timeout;
        assert_eq!(e.next_timeout(), Some(t0 + timeout));
        e.on_timeout(t0 + timeout - Duration::from_millis(1));
        assert!(closed(&mut e).is_empty());
        e.on_timeout(t0 + timeout);
        assert_eq!(closed(&mut e), vec![quiet]);
        assert!(e.session(talker).is_some(), "still authenticating");
        assert_eq!(e.next_timeout(), Some(t0 + e.config().handshake_timeout));
    }

    /// Connections that send their connect request and then never choose an
    /// authentication method take no slot either; they are closed when the
    /// handshake time is up.
    #[test]
    fn half_open_handshakes_take_no_slot() {
        let t0 = Instant::now();
        let mut e = engine(3, 8);
        let mut out = HashMap::new();
        let half: Vec<ConnId> = (0..5)
            .map(|i| {
                let id = silent(&mut e, t0);
                e.on_data(t0, id, &[5, 0, 1, 0, 2, b'h', b'0' + i]);
                id
            })
            .collect();
        for i in 0..3 {
            login(&mut e, t0, &format!("u{i}"), &mut out);
        }
        assert_eq!(e.num_sessions(), 3);
        let _ = closed(&mut e);
        let t = t0 + e.config().handshake_timeout;
        assert_eq!(e.next_timeout(), Some(t));
        e.on_timeout(t);
        assert_eq!(closed(&mut e), half);
    }

    /// With every slot taken by real sessions a new connection gets
    /// REJECT_QUOTA at once, as from the original; and a connect request
    /// that arrives after the last slot went while it was connecting gets it
    /// instead of the method list.
    #[test]
    fn full_slots_reject_with_quota_as_the_original() {
        let now = Instant::now();
        let mut e = engine(3, 8);
        let mut out = HashMap::new();
        let early = silent(&mut e, now);
        for i in 0..3 {
            login(&mut e, now, &format!("u{i}"), &mut out);
        }
        match e.accept(now, ConnKind::Unix, None) {
            Accepted::Rejected(b) => assert_eq!(&b[..], &[REJECT_QUOTA as i8 as u8]),
            Accepted::Conn(_) => panic!("accepted past the quota"),
        }
        e.on_data(now, early, &[5, 0, 1, 0, 1, b'x']);
        let mut got = Vec::new();
        while let Some(a) = e.poll_action() {
            match a {
                Action::Flush(id) if id == early => got.extend(e.drain_output(id)),
                Action::Close { id, linger } if id == early => linger.iter().for_each(|b| got.extend_from_slice(b)),
                _ => {}
            }
        }
        assert_eq!(got, vec![REJECT_QUOTA as i8 as u8]);
        assert_eq!(e.num_sessions(), 3);
    }
}
