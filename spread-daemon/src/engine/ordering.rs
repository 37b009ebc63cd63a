//! The ordering component: messages go down with a service class and come
//! back up, later, in one total order.
//!
//! For now this is a *ring of one*: a single daemon is its own token ring, so
//! every submitted message is stamped with the next sequence number and is
//! delivered in submission order, whatever its class (on one daemon AGREED,
//! SAFE, FIFO and RELIABLE orders coincide). The token ring replaces
//! [`RingOfOne`] behind the same two calls: [`Ordering::submit`] and
//! [`Ordering::poll_deliver`].

use std::collections::VecDeque;

use bytes::Bytes;
use spread_wire::consts::*;
use spread_wire::daemon::Status;
use spread_wire::Header;

/// Packet service class a message travels with (daemon spec §3.7,
/// `message.c:Message_get_packet_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceClass {
    Reliable,
    Fifo,
    Agreed,
    Safe,
}

impl ServiceClass {
    /// The class of a client message type (already validated): UNRELIABLE and
    /// RELIABLE travel reliably, FIFO as FIFO, CAUSAL and AGREED as AGREED, SAFE
    /// as SAFE, and JOIN/LEAVE/KILL as AGREED. A daemon-made `KILL|SAFE` is SAFE.
    pub fn of_type(t: u32) -> ServiceClass {
        if t & SAFE_MESS != 0 {
            ServiceClass::Safe
        } else if t & (AGREED_MESS | CAUSAL_MESS) != 0 {
            ServiceClass::Agreed
        } else if t & FIFO_MESS != 0 {
            ServiceClass::Fifo
        } else if t & (RELIABLE_MESS | UNRELIABLE_MESS) != 0 {
            ServiceClass::Reliable
        } else {
            ServiceClass::Agreed
        }
    }
}

/// A whole message as it travels through the ordering layer: its decoded
/// header (host values, this daemon's marker in `type_`) and the complete
/// encoded frame (header in this daemon's byte order, then groups, then body).
/// The frame is shared, never copied, by every local recipient.
#[derive(Clone, Debug)]
pub struct OrderedMessage {
    pub class: ServiceClass,
    pub header: Header,
    pub frame: Bytes,
    /// Sequence number assigned by the ordering layer (0 until submitted).
    pub seq: u64,
}

impl OrderedMessage {
    pub fn new(header: Header, frame: Bytes) -> OrderedMessage {
        OrderedMessage { class: ServiceClass::of_type(header.type_), header, frame, seq: 0 }
    }

    /// The `i`-th destination name of the frame (32 bytes).
    pub fn group(&self, i: usize) -> &[u8] {
        let off = HEADER_LEN + i * MAX_GROUP_NAME;
        &self.frame[off..off + MAX_GROUP_NAME]
    }

    pub fn num_groups(&self) -> usize {
        self.header.num_groups.max(0) as usize
    }
}

/// What an ordering protocol hands up, in delivery order.
#[derive(Clone, Debug)]
pub enum OrderEvent {
    Message(OrderedMessage),
    /// A transitional configuration: VIDs (conf order) and its id.
    Transitional {
        members: Vec<u32>,
        id: (i32, i32),
    },
    /// A regular configuration: VIDs (conf order) and its ring id.
    Regular {
        members: Vec<u32>,
        id: (i32, i32),
    },
}

/// The ring's figures for the metrics endpoint ([`Ordering::ring_figures`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingFigures {
    /// Membership state: `OP`, `SEG`, `REPRESENTED`, `GATHER`, `FORM`, `EVS`.
    pub state: &'static str,
    /// Daemons of the regular configuration in force.
    pub members: usize,
    /// Regular configurations installed.
    pub membership_changes: u64,
    /// Regular tokens this daemon received and processed (one per rotation
    /// of the token around the ring).
    pub token_rotations: u64,
    /// Token losses (each starts a membership round).
    pub token_losses: u64,
    /// Packets this daemon retransmitted on request.
    pub retransmissions: u64,
    /// Data packets sent and received on the daemon network.
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Datagrams dropped by the receive checks.
    pub dropped: u64,
}

impl RingFigures {
    /// The states a ring can be in, in the original's numbering (1…6).
    pub const STATES: [&'static str; 6] = ["OP", "SEG", "REPRESENTED", "GATHER", "FORM", "EVS"];

    /// A daemon alone: always in OP, one member, nothing on the network.
    pub fn alone() -> RingFigures {
        RingFigures {
            state: "OP",
            members: 1,
            membership_changes: 0,
            token_rotations: 0,
            token_losses: 0,
            retransmissions: 0,
            packets_sent: 0,
            packets_received: 0,
            dropped: 0,
        }
    }
}

/// What the session and groups layers need from an ordering protocol.
pub trait Ordering {
    /// Hand a message down; it comes back through `poll_deliver` once ordered.
    fn submit(&mut self, msg: OrderedMessage);
    /// The next message in the total order, if one is deliverable now.
    fn poll_deliver(&mut self) -> Option<OrderedMessage>;
    /// The next message or configuration change. A protocol that changes
    /// configurations overrides this (and then `poll_deliver` is not used).
    fn poll_event(&mut self) -> Option<OrderEvent> {
        self.poll_deliver().map(OrderEvent::Message)
    }
    /// A GROUPS message of a state exchange: it goes ahead of every client
    /// message (the GROUPS down queue of daemon spec §4.2).
    fn submit_groups(&mut self, msg: OrderedMessage) {
        self.submit(msg);
    }
    /// The groups layer starts (`true`) or ends (`false`) a state exchange:
    /// serve the GROUPS down queue and hold back early delivery (AGREED
    /// threshold), or go back to the normal queue and normal delivery.
    fn state_exchange(&mut self, _active: bool) {}
    /// Number of messages submitted and not yet delivered.
    fn pending(&self) -> usize;
    /// The highest sequence number this protocol has delivered (what the
    /// original's session log prints as `Highest_seq`); 0 for a protocol
    /// without sequence numbers.
    fn highest_delivered_seq(&self) -> u64 {
        0
    }
    /// Fill in the protocol's figures of a monitor status reply (daemon
    /// spec §8.4); a protocol without a ring keeps what it is given.
    fn fill_status(&self, _s: &mut Status) {}
    /// The ring's figures for the metrics endpoint (a protocol without a
    /// ring: a daemon alone, [`RingFigures::alone`]).
    fn ring_figures(&self) -> RingFigures {
        RingFigures::alone()
    }
    /// The monitor's partition (proc index → component; empty: none).
    fn set_partition(&mut self, _p: &[i16]) {}
    /// The monitor's flow control (`None`: unchanged).
    fn set_flow_control(&mut self, _window: Option<i16>, _personal: Option<i16>, _accelerated: Option<i16>) {}
    /// A configuration reload may run now (the ring: only in OP, §1.9).
    fn reload_ready(&self) -> bool {
        true
    }
    /// Take the reloaded configuration `cfg`, in which this daemon is proc
    /// index `me`; `singleton`: go alone first, then merge (§1.9).
    fn reload(&mut self, _now: std::time::Instant, _cfg: &crate::config::Config, _me: usize, _singleton: bool) {}
}

/// A single daemon forming its own ring: sequence numbers from 1, delivery in
/// submission order.
#[derive(Debug, Default)]
pub struct RingOfOne {
    queue: VecDeque<OrderedMessage>,
    highest_seq: u64,
    delivered_seq: u64,
}

impl RingOfOne {
    pub fn new() -> RingOfOne {
        RingOfOne::default()
    }

    /// Highest sequence number handed out.
    pub fn highest_seq(&self) -> u64 {
        self.highest_seq
    }

    /// Sequence number of the last delivered message.
    pub fn delivered_seq(&self) -> u64 {
        self.delivered_seq
    }
}

impl Ordering for RingOfOne {
    fn submit(&mut self, mut msg: OrderedMessage) {
        self.highest_seq += 1;
        msg.seq = self.highest_seq;
        self.queue.push_back(msg);
    }

    fn poll_deliver(&mut self) -> Option<OrderedMessage> {
        let m = self.queue.pop_front()?;
        self.delivered_seq = m.seq;
        Some(m)
    }

    fn pending(&self) -> usize {
        self.queue.len()
    }

    fn highest_delivered_seq(&self) -> u64 {
        self.delivered_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(ServiceClass::of_type(UNRELIABLE_MESS), ServiceClass::Reliable);
        assert_eq!(ServiceClass::of_type(RELIABLE_MESS), ServiceClass::Reliable);
        assert_eq!(ServiceClass::of_type(FIFO_MESS), ServiceClass::Fifo);
        assert_eq!(ServiceClass::of_type(CAUSAL_MESS), ServiceClass::Agreed);
        assert_eq!(ServiceClass::of_type(AGREED_MESS | SELF_DISCARD), ServiceClass::Agreed);
        assert_eq!(ServiceClass::of_type(SAFE_MESS), ServiceClass::Safe);
        assert_eq!(ServiceClass::of_type(JOIN_MESS), ServiceClass::Agreed);
        assert_eq!(ServiceClass::of_type(KILL_MESS | SAFE_MESS), ServiceClass::Safe);
    }

    #[test]
    fn ring_of_one_keeps_submission_order() {
        let mut r = RingOfOne::new();
        for (i, t) in [SAFE_MESS, RELIABLE_MESS, AGREED_MESS, FIFO_MESS].into_iter().enumerate() {
            let h = Header { type_: t, data_len: i as i32, ..Header::default() };
            r.submit(OrderedMessage::new(h, Bytes::new()));
        }
        assert_eq!(r.pending(), 4);
        let got: Vec<i32> = std::iter::from_fn(|| r.poll_deliver()).map(|m| m.header.data_len).collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(r.delivered_seq(), 4);
        assert_eq!(r.highest_delivered_seq(), 4);
    }
}
