//! The ordering protocol (daemon spec §4, `protocol.c`, `flow_control.c`):
//! sequence numbers, the packet store, the regular token with its ARU and
//! retransmission requests, flow control, the accelerated ring, token
//! hold/hurry, and delivery in RELIABLE / AGREED / SAFE order.
//!
//! Where the original aborts on an impossible state (a requested seq below
//! the ARU, a fragment out of sequence, a missing packet below the ARU), this
//! code drops the offending item and counts it instead: a hostile or broken
//! peer costs at most a membership change, never the daemon.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use spread_wire::daemon::data::{encode_fragments, ELEMENT_LEN};
use spread_wire::daemon::{
    DataPacket, Fragment, PacketHeader, RegularToken, RetransRequest, TokenHeader, AGREED_TYPE, FIFO_TYPE, HURRY_TYPE,
    PACKET_BODY_MAX, RELIABLE_TYPE, SAFE_TYPE, TOKEN_BODY_MAX, TOKEN_HEADER_LEN, UNRELIABLE_TYPE,
};
use spread_wire::endian::Order;

use super::timers::Timer;
use super::{Delivered, Ring, State, Up};

/// Slots of the packet store (`MAX_PACKETS_IN_STRUCT`); a seq lives in slot
/// `seq & (PACKET_SLOTS - 1)`.
pub const PACKET_SLOTS: usize = 8192;
/// No new packets while `Highest_seq > Aru + MAX_SEQ_GAP`.
pub const MAX_SEQ_GAP: i32 = 1600;
/// Above this token seq a membership change restarts sequence numbers.
pub const MAX_WRAP_SEQUENCE_VALUE: i32 = 1 << 30;
/// Most token rounds spent in EVS before declaring the token lost.
pub const MAX_EVS_ROUNDS: i32 = 500;
/// Most elements of one message.
pub const MAX_ELEMENTS: usize = 100;
/// Delivery threshold that blocks agreed and reliable delivery (§4.6).
pub const BLOCK_REGULAR_DELIVERY: u32 = 0x20;
/// [`Stored::origin`] of a packet whose originator a configuration reload
/// removed (its VID is still the packet header's `proc_id`).
pub const REMOVED: usize = usize::MAX;

/// Slot state (`exist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exist {
    Absent,
    /// Received, not delivered.
    Received,
    /// Delivered early (reliable / agreed), kept for retransmission.
    Delivered,
    /// EVS hole placeholder: counts as present, never requested.
    Hole,
}

/// A packet in the store: header and fragments in host form, payload bytes
/// verbatim (re-sent in my byte order, §3.1).
#[derive(Clone, Debug)]
pub struct Stored {
    pub header: PacketHeader,
    pub frags: Vec<Fragment>,
    /// Proc index of the originator ([`REMOVED`] once a reload took it out
    /// of the configuration).
    pub origin: usize,
}

#[derive(Clone, Debug)]
struct Slot {
    seq: i32,
    exist: Exist,
    pkt: Option<Stored>,
}

/// A message waiting in the down queue.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Packet service bit.
    pub service: u32,
    pub frame: Bytes,
    /// Elements already put into packets.
    pub cur: usize,
}

impl Pending {
    fn elements(&self) -> usize {
        self.frame.len().div_ceil(ELEMENT_LEN).max(1)
    }
    fn element(&self, k: usize) -> &[u8] {
        let s = k * ELEMENT_LEN;
        &self.frame[s.min(self.frame.len())..((k + 1) * ELEMENT_LEN).min(self.frame.len())]
    }
}

/// A message being reassembled for one originator (`Up_queue`).
#[derive(Clone, Debug, Default)]
struct Reasm {
    elements: usize,
    buf: Vec<u8>,
}

/// All state of the ordering protocol (§4.1).
#[derive(Debug)]
pub struct TokenState {
    slots: Vec<Slot>,
    pub highest_seq: i32,
    pub my_aru: i32,
    pub aru: i32,
    pub last_discarded: i32,
    pub last_delivered: i32,
    /// EVS target (FORM2 `seq`).
    pub last_seq: i32,
    /// The last token I sent (header only).
    pub last_token: TokenHeader,
    pub token_rounds: i32,
    pub received_token_rounds: i32,
    pub token_counter: i32,
    pub last_num_sent: i32,
    pub last_num_retrans: i32,
    /// The down queue being served (NORMAL or GROUPS, §4.2)...
    pub down: VecDeque<Pending>,
    /// ...and the other one.
    pub other: VecDeque<Pending>,
    /// The GROUPS queue is being served.
    pub groups_queue: bool,
    /// Reassembly per originator proc index; the last slot takes RELIABLE
    /// packets whose first fragment is a whole message.
    up: Vec<Option<Reasm>>,
    /// Reassembly for originators a reload removed from the configuration
    /// while their messages were still being delivered, by VID.
    orphans: Vec<(u32, Option<Reasm>)>,
    /// Packets created this round and held until the token is sent
    /// (accelerated ring): their seqs.
    queued: VecDeque<i32>,
    pub threshold: u32,
    pub token_priority: bool,
}

impl TokenState {
    pub fn new(num_procs: usize) -> TokenState {
        TokenState {
            slots: (0..PACKET_SLOTS).map(|_| Slot { seq: 0, exist: Exist::Absent, pkt: None }).collect(),
            highest_seq: 0,
            my_aru: 0,
            aru: 0,
            last_discarded: 0,
            last_delivered: 0,
            last_seq: 0,
            last_token: TokenHeader::default(),
            token_rounds: 0,
            received_token_rounds: 0,
            token_counter: 0,
            last_num_sent: 0,
            last_num_retrans: 0,
            down: VecDeque::new(),
            other: VecDeque::new(),
            groups_queue: false,
            up: vec![None; num_procs + 1],
            orphans: Vec::new(),
            queued: VecDeque::new(),
            threshold: BLOCK_REGULAR_DELIVERY,
            token_priority: false,
        }
    }

    /// State for a ring installed directly ([`Ring::install`]).
    pub fn reset_for_install(&mut self) {
        self.reset_sequence();
        self.last_token.type_ = 0;
        self.last_token.seq = 0;
        self.last_token.aru = 0;
        self.received_token_rounds = 0;
        self.last_num_sent = 0;
        self.last_num_retrans = 0;
        self.threshold = UNRELIABLE_TYPE;
    }

    fn slot(&self, seq: i32) -> &Slot {
        &self.slots[seq as usize & (PACKET_SLOTS - 1)]
    }
    fn slot_mut(&mut self, seq: i32) -> &mut Slot {
        &mut self.slots[seq as usize & (PACKET_SLOTS - 1)]
    }

    /// Serve the GROUPS down queue (`Prot_set_down_queue`).
    pub fn set_groups_queue(&mut self, on: bool) {
        if on != self.groups_queue {
            std::mem::swap(&mut self.down, &mut self.other);
            self.groups_queue = on;
        }
    }

    /// `exist` of `seq` (absent when the slot holds another seq).
    pub fn exist(&self, seq: i32) -> Exist {
        let s = self.slot(seq);
        if s.seq == seq {
            s.exist
        } else {
            Exist::Absent
        }
    }

    fn present(&self, seq: i32) -> bool {
        self.exist(seq) != Exist::Absent
    }

    /// The slot of `seq` holds something (a packet or a hole).
    pub(crate) fn slot_present(&self, seq: i32) -> bool {
        self.present(seq)
    }

    /// Empty every slot and restart sequence numbers (a new regular
    /// configuration, §4.1); my partly sent message restarts, partly
    /// reassembled messages are dropped.
    pub(crate) fn reset_sequence(&mut self) {
        for s in &mut self.slots {
            s.exist = Exist::Absent;
            s.pkt = None;
        }
        self.highest_seq = 0;
        self.my_aru = 0;
        self.aru = 0;
        self.last_discarded = 0;
        self.last_delivered = 0;
        self.token_counter = 0;
        self.queued.clear();
        if let Some(p) = self.down.front_mut() {
            p.cur = 0;
        }
        if let Some(p) = self.other.front_mut() {
            p.cur = 0;
        }
        for u in &mut self.up {
            *u = None;
        }
        self.orphans.clear();
    }

    /// A reload (§1.9) renumbered the daemons: `map[i]` is the new proc
    /// index of old index `i` and its VID (`None`: no longer configured).
    /// Stored packets and partial messages follow their originators; those
    /// of removed daemons are kept by VID until they are delivered.
    pub(crate) fn renumber(&mut self, map: &[(u32, Option<usize>)], num_procs: usize) {
        for s in &mut self.slots {
            if let Some(p) = &mut s.pkt {
                p.origin = map.get(p.origin).and_then(|m| m.1).unwrap_or(REMOVED);
            }
        }
        let reliable = self.up.pop().flatten();
        let mut up: Vec<Option<Reasm>> = vec![None; num_procs + 1];
        for (old, r) in std::mem::take(&mut self.up).into_iter().enumerate() {
            let (Some(r), Some(&(vid, new))) = (r, map.get(old)) else { continue };
            match new {
                Some(n) => up[n] = Some(r),
                None => self.orphans.push((vid, Some(r))),
            }
        }
        up[num_procs] = reliable;
        self.up = up;
    }

    /// The reassembly slot `qi` (a proc index, the RELIABLE slot, or
    /// [`REMOVED`]: the removed originator `vid`'s).
    fn reasm(&mut self, qi: usize, vid: u32) -> &mut Option<Reasm> {
        if qi != REMOVED {
            return &mut self.up[qi];
        }
        let i = match self.orphans.iter().position(|o| o.0 == vid) {
            Some(i) => i,
            None => {
                self.orphans.push((vid, None));
                self.orphans.len() - 1
            }
        };
        &mut self.orphans[i].1
    }

    fn stored(&self, seq: i32) -> Option<&Stored> {
        let s = self.slot(seq);
        if s.seq == seq && s.exist != Exist::Absent {
            s.pkt.as_ref()
        } else {
            None
        }
    }

    fn insert(&mut self, seq: i32, pkt: Stored) {
        let s = self.slot_mut(seq);
        *s = Slot { seq, exist: Exist::Received, pkt: Some(pkt) };
    }

    fn free(&mut self, seq: i32) {
        let s = self.slot_mut(seq);
        if s.seq == seq {
            s.exist = Exist::Absent;
            s.pkt = None;
        }
    }

    /// Advance `My_aru` over present slots up to `Highest_seq`.
    fn advance_my_aru(&mut self) {
        while self.my_aru < self.highest_seq && self.present(self.my_aru + 1) {
            self.my_aru += 1;
        }
    }
}

fn is_safe(t: u32) -> bool {
    t & SAFE_TYPE != 0
}
fn fifo_or_agreed(t: u32) -> bool {
    t & (FIFO_TYPE | AGREED_TYPE) != 0
}

impl Ring {
    fn leader_is_me(&self) -> bool {
        self.memb.active().leader() == Some(self.topo.me)
    }

    /// `Is_token_hold` / `To_hold_token` (§4.10).
    pub(crate) fn is_token_hold(&self) -> bool {
        let st = self.memb.state == State::Op || (self.memb.state == State::Gather && self.memb.token_alive);
        st && self.tok.last_token.retrans() <= 1 && self.tok.aru == self.tok.highest_seq && self.tok.token_counter > 1
    }

    /// `Prot_new_message`: append to the down queue; if the token is held,
    /// ask the leader to release it.
    pub(crate) fn queue_message(&mut self, service: u32, frame: Bytes) {
        if frame.is_empty() || frame.len().div_ceil(ELEMENT_LEN) > MAX_ELEMENTS {
            tracing::warn!(target: "spread::ring", "message of {} bytes cannot be sent: dropped", frame.len());
            return;
        }
        self.tok.down.push_back(Pending { service, frame, cur: 0 });
        if self.tok.down.len() == 1 && self.is_token_hold() {
            let Some(leader) = self.memb.active().leader() else { return };
            if leader == self.topo.me {
                let me = self.my_vid() as i32;
                let now = self.now;
                self.hurry_request(now, me);
            } else {
                let me = self.my_vid() as i32;
                let h = PacketHeader { type_: HURRY_TYPE, proc_id: me, ..PacketHeader::default() };
                let vid = self.topo.procs[leader].vid;
                self.ucast_packet(vid, &h, &[]);
            }
        }
    }

    /// A HURRY packet from `proc_id` (or my own request as leader).
    pub(crate) fn handle_hurry(&mut self, now: Instant, proc_id: i32) {
        self.hurry_request(now, proc_id);
    }

    fn hurry_request(&mut self, now: Instant, proc_id: i32) {
        if !self.leader_is_me() || !self.is_token_hold() {
            return;
        }
        let Some(p) = self.topo.index_of(proc_id as u32) else { return };
        if !self.memb.active().contains(p) {
            return;
        }
        self.tok.token_counter = 0;
        self.token_hurry(now);
    }

    /// `Prot_token_hurry` (the hurry timer, a HURRY request, or a
    /// non-leader asked to re-send): re-send the last token, header only.
    /// The leader bumps RETRANS and re-arms the hurry timer.
    pub(crate) fn token_hurry(&mut self, now: Instant) {
        self.tok.last_token.rtr_len = 0;
        if self.leader_is_me() {
            let r = self.tok.last_token.retrans() + 1;
            self.tok.last_token.set_retrans(r);
            self.timers.arm(Timer::Hurry, now + self.params.hurry_timeout);
            self.stats.token_hurry += 1;
        }
        let h = self.tok.last_token;
        self.send_token_header(&h, &[]);
        let me = self.topo.me;
        if self.params.wide && self.topo.seg_last(self.memb.active(), self.topo.my_seg()) == Some(me) {
            self.send_token_header(&h, &[]);
        }
        if h.retrans() > 1 {
            self.send_token_header(&h, &[]);
            self.send_token_header(&h, &[]);
        }
    }

    // ---- data packets (§4.3) ----------------------------------------------

    /// A data packet of my ring.
    pub(crate) fn handle_data(&mut self, now: Instant, order: Order, h: PacketHeader, body: &[u8]) {
        if self.memb.token_alive {
            self.timers.arm(Timer::TokenLoss, now + self.params.token_timeout);
            if self.leader_is_me() {
                self.timers.arm(Timer::Hurry, now + self.params.hurry_timeout);
            }
        }
        let seq = h.seq;
        let t = &self.tok;
        if seq <= t.last_discarded || t.present(seq) {
            return;
        }
        if seq - t.last_discarded >= PACKET_SLOTS as i32 || seq < 1 {
            self.stats.dropped += 1;
            return;
        }
        let Some(origin) = self.topo.index_of(h.proc_id as u32) else { return };
        let Ok(pkt) = DataPacket::decode_body(order, h, body) else {
            self.stats.dropped += 1;
            return;
        };
        let transmitter = h.transmiter_id;
        let token_round = h.token_round;
        self.tok.insert(seq, Stored { header: h, frags: pkt.fragments, origin });
        self.stats.packets_recv += 1;
        if self.params.accelerated && !self.tok.token_priority && token_round > self.tok.received_token_rounds {
            let pred = self.topo.predecessor(self.memb.active(), self.topo.me);
            if self.topo.procs[pred].vid as i32 == transmitter {
                self.tok.token_priority = true;
            }
        }
        if self.tok.highest_seq < seq {
            self.tok.highest_seq = seq;
        }
        if seq == self.tok.my_aru + 1 {
            self.tok.advance_my_aru();
            self.deliver_agreed();
        } else {
            self.deliver_reliable(seq, 1);
        }
    }

    // ---- the regular token (§4.4) ------------------------------------------

    /// A regular token (header already checked for hash/transmitter/source).
    pub(crate) fn handle_token(&mut self, now: Instant, order: Order, h: TokenHeader, b: &[u8]) {
        tracing::info!(
            target: "spread::prot",
            "Prot_handle_token: type = 0x{:08X}; transmitter = 0x{:08X}; seq = {}; proc_id = 0x{:08X}; aru = {}; aru_last_id = 0x{:08X};",
            h.type_,
            h.transmiter_id,
            h.seq,
            h.proc_id,
            h.aru,
            h.aru_last_id
        );
        if !self.memb.token_alive {
            tracing::info!(target: "spread::prot", "Prot_handle_token: Veto Property. Memb not alive.");
            return;
        }
        if h.memb_id != self.memb.active_id() {
            let want = self.memb.active_id();
            tracing::info!(
                target: "spread::prot",
                "Prot_handle_token: received token for wrong memb id ({}, {})! Should be ({}, {})",
                h.memb_id.proc_id,
                h.memb_id.time,
                want.proc_id,
                want.time
            );
            return;
        }
        let pred = self.topo.predecessor(self.memb.active(), self.topo.me);
        if h.transmiter_id != self.topo.procs[pred].vid as i32 {
            return;
        }
        if b.len() != TOKEN_HEADER_LEN + h.rtr_len as usize {
            self.stats.dropped += 1;
            return;
        }
        let Ok(tok) = RegularToken::decode_body(order, h, &b[TOKEN_HEADER_LEN..]) else {
            self.stats.dropped += 1;
            return;
        };
        let evs = self.memb.in_evs();
        if !evs && h.seq > MAX_WRAP_SEQUENCE_VALUE {
            return;
        }
        let leader = self.leader_is_me();
        let last = self.tok.last_token;
        if leader {
            if h.arq() != last.arq() {
                return;
            }
            if self.memb.just_installed {
                self.memb.just_installed = false;
                self.tok.last_token.aru = 0;
            }
        } else if h.arq() == last.arq() {
            if h.retrans() > last.retrans() {
                self.tok.last_token.set_retrans(h.retrans());
                self.token_hurry(now);
            }
            return;
        } else if h.arq() != (last.arq() + 1) % 16 {
            return;
        } else {
            if self.memb.just_installed {
                self.memb.just_installed = false;
                self.tok.last_token.aru = 0;
            }
            if h.retrans() > 0 {
                self.stats.token_hurry += 1;
            }
        }
        self.process_token(now, tok);
    }

    fn process_token(&mut self, now: Instant, tok: RegularToken) {
        let RegularToken { header: mut h, requests } = tok;
        let evs = self.memb.in_evs();
        let leader = self.leader_is_me();
        self.stats.tokens_processed += 1;
        if self.tok.highest_seq < h.seq {
            self.tok.highest_seq = h.seq;
        }
        self.tok.received_token_rounds += 1;
        self.tok.token_priority = false;

        // Step 10: answer retransmission requests.
        let (num_retrans, mut kept, rtr_proc, rtr_seg) = self.answer_retrans(requests);
        self.stats.retrans += num_retrans as u64;

        // Steps 11-12: new packets within flow control.
        let allowed = self.fc_allowed(h.flow_control as i32);
        let num_sent = self.send_new_packets(allowed);
        self.stats.packets_sent += num_sent as u64;
        let fc = h.flow_control as i32 - self.tok.last_num_retrans - self.tok.last_num_sent + num_retrans + num_sent;
        h.flow_control = fc as i16;
        self.tok.last_num_retrans = num_retrans;
        self.tok.last_num_sent = num_sent;

        // Steps 13-14: my ARU and my retransmission request.
        self.tok.advance_my_aru();
        let max_rtr = if self.params.accelerated && !evs { self.tok.last_token.seq } else { self.tok.highest_seq };
        if self.tok.my_aru < max_rtr {
            let used: usize = kept.iter().map(|r| 16 + 4 * r.seqs.len()).sum();
            let mut room = (TOKEN_BODY_MAX as i64 - used as i64 - 16) / 4;
            if room > 1 {
                let mut seqs = Vec::new();
                let mut s = self.tok.my_aru + 1;
                while s <= max_rtr && room > 0 {
                    if !self.tok.present(s) {
                        seqs.push(s);
                        room -= 1;
                    }
                    s += 1;
                }
                kept.push(RetransRequest { memb_id: self.memb.id, proc_id: rtr_proc, seg_index: rtr_seg, seqs });
            }
        }

        // Step 15: in EVS, everything of the old ring is here (or a hole):
        // commit.
        if evs && self.tok.my_aru == self.tok.highest_seq {
            self.tok.my_aru = self.tok.last_seq;
            self.memb_commit();
        }

        // Step 17: the ARU rule (with the seq as received).
        let me = self.my_vid() as i32;
        if h.aru > self.tok.my_aru || h.aru_last_id == me || (h.aru == h.seq && !evs) {
            h.aru = self.tok.my_aru;
            h.aru_last_id = me;
        }
        h.proc_id = me;
        if !evs {
            h.seq = self.tok.highest_seq;
        }
        if leader {
            h.set_arq((h.arq() + 1) % 16);
            h.set_retrans(0);
        }

        // Step 20: send it on, unless the leader holds it.
        let mut body = self.take_scratch();
        let t = RegularToken { header: h, requests: kept };
        if t.encode_body(self.params.order, &mut body).is_err() {
            body.clear();
        }
        h.rtr_len = body.len() as u16;
        if !(leader && self.is_token_hold()) {
            self.send_token_header(&h, &body);
            if h.retrans() > 1 {
                self.send_token_header(&h, &body);
                self.send_token_header(&h, &body);
            }
        }
        self.put_scratch(body);
        self.tok.token_rounds += 1;
        if leader {
            self.timers.arm(Timer::Hurry, now + self.params.hurry_timeout);
        }
        self.timers.arm(Timer::TokenLoss, now + self.params.token_timeout);

        // Step 22: the accelerated ring's held-back packets.
        self.flush_queued();

        // Step 23: Aru = min(aru sent now, aru sent last round); never lower.
        let new = if h.aru > self.tok.last_token.aru { self.tok.last_token.aru } else { h.aru };
        if new >= self.tok.aru {
            self.tok.aru = new;
        } else {
            tracing::warn!(target: "spread::ring", "token would lower Aru {} -> {}: kept", self.tok.aru, new);
        }
        self.tok.token_counter = if self.tok.highest_seq == self.tok.aru { self.tok.token_counter + 1 } else { 0 };
        h.transmiter_id = me;
        h.conf_hash = self.params.hash;
        self.tok.last_token = h;

        // Step 26: deliver (in EVS this is where the ring installs).
        self.discard_packets(now);
        self.deliver_agreed();
        let hs = self.tok.highest_seq;
        self.deliver_reliable(hs - num_sent + 1, num_sent);

        // Step 27.
        if self.memb.in_evs() && self.tok.token_rounds > MAX_EVS_ROUNDS {
            tracing::warn!(target: "spread::ring", "too many token rounds in EVS: token loss");
            self.token_loss(now);
        }
    }

    /// `FC_allowed` (§4.8).
    fn fc_allowed(&self, fc: i32) -> i32 {
        if self.memb.in_evs() || self.tok.highest_seq > self.tok.aru + MAX_SEQ_GAP {
            return 0;
        }
        let w = self.params.window;
        let pw = self.params.personal_window;
        w.min(pw).min((w + pw - fc).max(0))
    }

    /// `Answer_retrans` (§4.7): re-send what I have of my ring's requests;
    /// returns (number re-sent, the other rings' records, my request's
    /// proc id and segment index).
    fn answer_retrans(&mut self, requests: Vec<RetransRequest>) -> (i32, Vec<RetransRequest>, i32, i16) {
        let mut n = 0;
        let mut kept = Vec::new();
        let mut proc_id = self.my_vid() as i32;
        let my_seg = self.topo.my_seg() as i16;
        let mut seg_index = my_seg;
        let mut buf = Vec::new();
        for r in requests {
            if r.memb_id != self.memb.id {
                kept.push(r);
                continue;
            }
            for &s in &r.seqs {
                if s < self.tok.aru {
                    continue;
                }
                let Some(p) = self.tok.stored(s) else {
                    proc_id = -1;
                    if r.seg_index != my_seg {
                        seg_index = -1;
                    }
                    continue;
                };
                let h = p.header;
                buf.clear();
                if encode_fragments(self.params.order, &p.frags, &mut buf).is_err() {
                    continue;
                }
                let mut hh = h;
                if let Some(f) = p.frags.first() {
                    hh.first_frag.index = f.index;
                    hh.first_frag.len = f.data.len() as i16;
                }
                if r.proc_id != -1 {
                    tracing::info!(target: "spread::prot", "Answer_retrans: retransmit {s} to proc 0x{:08X}", r.proc_id);
                    self.ucast_packet(r.proc_id as u32, &hh, &buf);
                    self.stats.u_retrans += 1;
                } else if r.seg_index != -1 {
                    tracing::info!(target: "spread::prot", "Answer_retrans: retransmit {s} to seg 0x{:08X}", r.seg_index);
                    self.scast_packet(r.seg_index as usize, &hh, &buf);
                    self.stats.s_retrans += 1;
                } else {
                    tracing::info!(target: "spread::prot", "Answer_retrans: retransmit {s} to all");
                    self.bcast_packet(&hh, &buf);
                    self.stats.b_retrans += 1;
                }
                n += 1;
            }
        }
        (n, kept, proc_id, seg_index)
    }

    /// `Send_new_packets` (§4.2, §3.6): up to `allowed` packets from the
    /// down queue, packed, stored, and broadcast (or held back, §4.9).
    fn send_new_packets(&mut self, allowed: i32) -> i32 {
        let mut sent = 0;
        while sent < allowed {
            let Some(head) = self.tok.down.front() else { break };
            let service = head.service;
            let mut frags = Vec::new();
            let mut len;
            // First fragment: the current element of the head message.
            {
                let head = self.tok.down.front_mut().expect("checked");
                let n = head.elements();
                let k = head.cur;
                let data = head.element(k).to_vec();
                head.cur += 1;
                let index = if head.cur < n { head.cur as i16 } else { -(n as i16) };
                len = data.len();
                frags.push(Fragment { index, data });
                if head.cur >= n {
                    self.tok.down.pop_front();
                }
            }
            // Append whole single-element messages while they fit.
            while let Some(next) = self.tok.down.front() {
                let pad = (4 - len % 4) % 4;
                let avail = PACKET_BODY_MAX as i64 - len as i64 - pad as i64 - 4;
                let el = next.element(next.cur);
                if el.len() as i64 > avail {
                    break;
                }
                if next.service != service && !(fifo_or_agreed(service) && fifo_or_agreed(next.service)) {
                    break;
                }
                // Only a whole single-element message can follow (§3.6);
                // every non-final element is ELEMENT_LEN bytes, which never
                // fits after another fragment, so this is the only case.
                let n = next.elements();
                let data = el.to_vec();
                let index = if next.cur + 1 < n { (next.cur + 1) as i16 } else { -(n as i16) };
                if index != -1 {
                    break;
                }
                len += pad + 4 + data.len();
                frags.push(Fragment { index, data });
                self.tok.down.pop_front();
            }
            self.tok.highest_seq += 1;
            let seq = self.tok.highest_seq;
            let f0 = &frags[0];
            let header = PacketHeader {
                type_: service,
                proc_id: self.my_vid() as i32,
                memb_id: self.memb.id,
                seq,
                first_frag: spread_wire::daemon::FragmentHeader { index: f0.index, len: f0.data.len() as i16 },
                ..PacketHeader::default()
            };
            let me = self.topo.me;
            self.tok.insert(seq, Stored { header, frags, origin: me });
            self.queue_bcast(seq);
            sent += 1;
        }
        sent
    }

    /// `Prot_queue_bcast`: on the accelerated ring keep the last
    /// `AcceleratedWindow` new packets until after the token; else send now.
    fn queue_bcast(&mut self, seq: i32) {
        let accel = self.params.accelerated && !self.memb.in_evs();
        let aw = self.params.accelerated_window.max(0) as usize;
        if !accel {
            self.bcast_stored(seq);
            return;
        }
        let n = (self.tok.queued.len() + 1).saturating_sub(aw).min(self.tok.queued.len());
        for _ in 0..n {
            if let Some(s) = self.tok.queued.pop_front() {
                self.bcast_stored(s);
            }
        }
        if aw == 0 {
            self.bcast_stored(seq);
        } else {
            self.tok.queued.push_back(seq);
        }
    }

    /// `Prot_flush_bcast`.
    fn flush_queued(&mut self) {
        while let Some(s) = self.tok.queued.pop_front() {
            self.bcast_stored(s);
        }
    }

    /// Stamp `token_round` and broadcast a stored packet of mine.
    fn bcast_stored(&mut self, seq: i32) {
        let rounds = self.tok.token_rounds;
        let order = self.params.order;
        let slot = self.tok.slot_mut(seq);
        let Some(p) = slot.pkt.as_mut() else { return };
        p.header.token_round = rounds;
        let h = p.header;
        let mut body = Vec::with_capacity(PACKET_BODY_MAX);
        if encode_fragments(order, &p.frags, &mut body).is_err() {
            return;
        }
        self.bcast_packet(&h, &body);
    }

    // ---- delivery (§4.6) ----------------------------------------------------

    /// `Deliver_reliable_packets`: whole RELIABLE messages at once.
    fn deliver_reliable(&mut self, start: i32, count: i32) {
        if self.memb.in_evs() || self.tok.threshold > RELIABLE_TYPE || count <= 0 {
            return;
        }
        let end = start + count - 1;
        let start = start.max(self.tok.last_delivered + 1);
        for s in start..=end {
            if self.tok.exist(s) == Exist::Received {
                let whole = self
                    .tok
                    .stored(s)
                    .is_some_and(|p| p.header.type_ & RELIABLE_TYPE != 0 && p.header.first_frag.index == -1);
                if whole {
                    self.deliver_packet(s);
                }
            }
        }
    }

    /// `Deliver_agreed_packets`: in seq order up to `My_aru`, stopping at
    /// the first undelivered SAFE packet.
    fn deliver_agreed(&mut self) {
        if self.tok.my_aru <= self.tok.last_delivered || self.memb.in_evs() || self.tok.threshold > AGREED_TYPE {
            return;
        }
        while self.tok.last_delivered < self.tok.my_aru {
            let s = self.tok.last_delivered + 1;
            match self.tok.exist(s) {
                Exist::Received => {
                    if self.tok.stored(s).is_some_and(|p| is_safe(p.header.type_)) {
                        return;
                    }
                    self.deliver_packet(s);
                    self.tok.last_delivered += 1;
                }
                Exist::Delivered | Exist::Hole => self.tok.last_delivered += 1,
                Exist::Absent => return,
            }
        }
    }

    /// `Discard_packets`: outside EVS deliver what is left up to `Aru` (SAFE
    /// delivery) and free it; in EVS, once `Aru` reaches `Last_seq`, install
    /// the new ring (§5.7).
    pub(crate) fn discard_packets(&mut self, now: Instant) {
        if self.tok.aru <= self.tok.last_discarded {
            return;
        }
        if self.memb.in_evs() {
            if self.tok.aru == self.tok.last_seq {
                self.install_from_evs(now);
            }
            return;
        }
        for s in self.tok.last_discarded + 1..=self.tok.aru {
            match self.tok.exist(s) {
                Exist::Received => self.deliver_packet(s),
                Exist::Absent => {
                    tracing::warn!(target: "spread::ring", "packet {s} below Aru {} is missing", self.tok.aru);
                }
                _ => {}
            }
            self.tok.free(s);
        }
        self.tok.last_discarded = self.tok.aru;
        if self.tok.last_delivered < self.tok.last_discarded {
            self.tok.last_delivered = self.tok.last_discarded;
        }
    }

    /// The end of EVS (§5.7): old-ring packets before the first hole or
    /// SAFE packet in the old configuration, the transitional signal, the
    /// rest (after a hole only from commit members), then the regular
    /// configuration with sequence numbers restarting.
    fn install_from_evs(&mut self, now: Instant) {
        let hs = self.tok.highest_seq;
        let mut s = self.tok.last_discarded + 1;
        while s <= hs {
            match self.tok.exist(s) {
                Exist::Hole => break,
                Exist::Absent => {
                    tracing::warn!(target: "spread::ring", "EVS: packet {s} missing before the transitional signal");
                    break;
                }
                e => {
                    if self.tok.stored(s).is_some_and(|p| is_safe(p.header.type_)) {
                        break;
                    }
                    if e == Exist::Received {
                        self.deliver_packet(s);
                    }
                    self.tok.free(s);
                    self.tok.last_discarded = s;
                }
            }
            s += 1;
        }
        let (trans, tid, commit) = self.memb_transitional();
        self.up_configuration(true, &trans, tid);
        let mut found_hole = false;
        for s in self.tok.last_discarded + 1..=hs {
            match self.tok.exist(s) {
                Exist::Hole => found_hole = true,
                Exist::Absent => {}
                e => {
                    let origin = self.tok.stored(s).map(|p| p.origin);
                    if e == Exist::Received && (!found_hole || origin.is_some_and(|o| commit.contains(o))) {
                        self.deliver_packet(s);
                    }
                }
            }
            self.tok.free(s);
        }
        self.tok.reset_sequence();
        self.memb_regular(now);
        let m = self.memb.members.clone();
        let id = self.memb.id;
        self.up_configuration(false, &m, id);
    }

    /// Read_form2 steps 5-7 (§5.6): forget packets beyond my record's
    /// highest seq and those listed as holes (they come from daemons not in
    /// the new ring), take the record's Aru, deliver up to it, and mark the
    /// holes.
    pub(crate) fn form2_adjust_packets(&mut self, rec: &spread_wire::daemon::RingRecord, now: Instant) {
        while self.tok.highest_seq > rec.highest_seq {
            let s = self.tok.highest_seq;
            self.tok.free(s);
            self.tok.highest_seq -= 1;
        }
        if self.tok.my_aru > rec.highest_seq {
            self.tok.my_aru = rec.highest_seq;
        }
        self.tok.highest_seq = rec.highest_seq;
        self.tok.aru = rec.aru.min(rec.highest_seq);
        self.discard_packets(now);
        for &h in &rec.holes {
            if h <= self.tok.last_discarded || h > self.tok.highest_seq {
                continue;
            }
            let slot = self.tok.slot_mut(h);
            *slot = Slot { seq: h, exist: Exist::Hole, pkt: None };
        }
        let mut a = self.tok.last_discarded;
        while a < self.tok.highest_seq && matches!(self.tok.exist(a + 1), Exist::Received | Exist::Delivered) {
            a += 1;
        }
        self.tok.my_aru = a;
    }

    /// `Backoff_membership` (§5.8): holes become absent again, the ARU goes
    /// back to what was discarded.
    pub(crate) fn backoff_membership(&mut self) {
        for s in self.tok.last_discarded + 1..=self.tok.highest_seq {
            if self.tok.exist(s) == Exist::Hole {
                self.tok.free(s);
            }
        }
        self.tok.aru = self.tok.last_discarded;
        self.tok.my_aru = self.tok.last_discarded;
        self.tok.advance_my_aru();
    }

    /// `Prot_set_delivery_threshold`: lowering it schedules delivery passes.
    pub(crate) fn set_threshold(&mut self, t: u32) {
        let old = self.tok.threshold;
        self.tok.threshold = t;
        let now = self.now;
        if t < old {
            if t <= RELIABLE_TYPE {
                self.timers.arm(Timer::DeliverReliable, now);
            }
            if t <= AGREED_TYPE {
                self.timers.arm(Timer::DeliverAgreed, now);
            }
        } else if t > old {
            if t > AGREED_TYPE {
                self.timers.cancel(Timer::DeliverAgreed);
            }
            if t > RELIABLE_TYPE {
                self.timers.cancel(Timer::DeliverReliable);
            }
        }
    }

    /// The zero-delay delivery passes of [`Ring::set_threshold`].
    pub(crate) fn delivery_timer(&mut self, t: Timer) {
        match t {
            Timer::DeliverReliable => {
                let hs = self.tok.highest_seq;
                self.deliver_reliable(1, hs);
            }
            Timer::DeliverAgreed => self.deliver_agreed(),
            _ => {}
        }
    }

    /// `Deliver_packet`: the first fragment joins its originator's message;
    /// the others are whole messages of their own, delivered after it.
    fn deliver_packet(&mut self, seq: i32) {
        let slot = self.tok.slot_mut(seq);
        if slot.seq != seq {
            return;
        }
        slot.exist = Exist::Delivered;
        let Some(p) = slot.pkt.as_ref() else { return };
        let h = p.header;
        let origin = p.origin;
        let origin_vid = if origin == REMOVED { h.proc_id as u32 } else { self.topo.procs[origin].vid };
        let first = p.frags.first().cloned();
        let extra: Vec<Bytes> = p.frags.iter().skip(1).map(|f| Bytes::copy_from_slice(&f.data)).collect();
        self.stats.packets_delivered += 1;
        let service = h.type_ & spread_wire::daemon::REGULAR_TYPE;
        if let Some(f) = first {
            let qi = if h.type_ & RELIABLE_TYPE != 0 && f.index == -1 { self.tok.up.len() - 1 } else { origin };
            let q = self.tok.reasm(qi, origin_vid).get_or_insert_with(Reasm::default);
            let idx = (f.index as i32).unsigned_abs() as usize;
            if q.elements + 1 != idx {
                tracing::warn!(
                    target: "spread::ring",
                    "packet {seq}: fragment {} out of sequence (have {}): message dropped",
                    f.index,
                    q.elements
                );
                *self.tok.reasm(qi, origin_vid) = None;
                self.stats.dropped += 1;
            } else {
                q.elements += 1;
                q.buf.extend_from_slice(&f.data);
                if f.index < 0 {
                    let q = self.tok.reasm(qi, origin_vid).take().unwrap_or_default();
                    self.stats.messages_delivered += 1;
                    self.push_up(Up::Message(Delivered {
                        origin: origin_vid,
                        seq,
                        service,
                        frame: Bytes::from(q.buf),
                    }));
                }
            }
        }
        for frame in extra {
            self.stats.messages_delivered += 1;
            self.push_up(Up::Message(Delivered { origin: origin_vid, seq, service, frame }));
        }
    }
}
