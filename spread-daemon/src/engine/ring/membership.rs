//! The membership algorithm (daemon spec §5, `membership.c`): the states
//! OP / SEG / REPRESENTED / GATHER / FORM / EVS, ALIVE / JOIN / REFER, the
//! FORM1 and FORM2 tokens, ring ids, and the transitional and regular
//! configurations handed up at the end of EVS.
//!
//! VIDs are kept as the `i32`s the wire carries. Where the original aborts
//! (an unknown daemon in a list, an impossible state), the input is ignored.

use std::time::Instant;

use spread_wire::daemon::{
    Form1Token, Form2Token, JoinPacket, MemberList, MembershipId, PacketHeader, RepInfo, RepList, RepType, RingRecord,
    TokenHeader, ALIVE_TYPE, FORM1_TYPE, FORM2_TYPE, JOIN_TYPE, MAX_PROCS_RING, MAX_REPS, PACKET_HEADER_LEN,
    REFER_TYPE,
};
use spread_wire::endian::Order;

use super::timers::Timer;
use super::token::{BLOCK_REGULAR_DELIVERY, MAX_SEQ_GAP};
use super::{Members, Ring, State, Up};

/// Seconds by which the ring ids of a freshly started daemon lead its clock
/// (see [`Ring::start`]).
pub const START_ID_MARGIN: i32 = 30;

/// Most ring records a FORM token carries (`MAX_FORM_REPS`).
pub const MAX_FORM_REPS: usize = 20;

/// A representative (`rep_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rep {
    pub vid: i32,
    pub ty: RepType,
    pub seg: i16,
}

impl Rep {
    fn wire(self) -> RepInfo {
        RepInfo { proc_id: self.vid, rep_type: self.ty, seg_index: self.seg }
    }
    fn from_wire(r: &RepInfo) -> Rep {
        Rep { vid: r.proc_id, ty: r.rep_type, seg: r.seg_index }
    }
}

/// Membership state (§5.1).
#[derive(Clone, Debug)]
pub struct Memb {
    pub state: State,
    pub token_alive: bool,
    /// Current regular configuration (reduced to {me} on token loss) and its
    /// ring id (kept on token loss: it names the old ring in FORM1 and EVS).
    pub members: Members,
    pub id: MembershipId,
    /// Configuration being installed (EVS) and its id.
    pub future: Members,
    pub future_id: MembershipId,
    /// The last installed regular configuration (lookups use it).
    pub reg_members: Members,
    /// The configuration the network layer routes by (`Net_set_membership`):
    /// set when a FORM2 is read; token successor and broadcast targets.
    pub net_members: Members,
    pub f_members: Vec<i32>,
    pub f_reps: Vec<Rep>,
    /// `F_reps.rep_index` as last set (carried in JOINs as the original does).
    pub f_reps_index: i16,
    pub potential_reps: Vec<Rep>,
    pub my_seg_rep: i32,
    pub commit_set: Vec<i32>,
    /// From my FORM2 record: the commit list and how many of its first
    /// entries are transitional members.
    pub future_commit: Vec<i32>,
    pub future_trans: usize,
    pub form1_id: MembershipId,
    pub last_time_used: i32,
    pub trans_time: i32,
    pub foreign_found: bool,
    /// Set at install; cleared by the first token processed after it.
    pub just_installed: bool,
    /// When `Form_or_fail` runs after this GATHER began, as the original
    /// schedules it (an early form may be armed before it).
    pub gather_deadline: Option<Instant>,
}

impl Memb {
    pub fn new(me: usize, vid: i32) -> Memb {
        let only_me = Members::new(vec![me]);
        Memb {
            state: State::Op,
            token_alive: false,
            members: only_me.clone(),
            id: MembershipId { proc_id: vid, time: -1 },
            future: only_me.clone(),
            future_id: MembershipId::default(),
            reg_members: only_me.clone(),
            net_members: only_me,
            f_members: vec![vid],
            f_reps: Vec::new(),
            f_reps_index: 0,
            potential_reps: Vec::new(),
            my_seg_rep: -1,
            commit_set: vec![vid],
            future_commit: Vec::new(),
            future_trans: 0,
            form1_id: MembershipId::default(),
            last_time_used: -1,
            trans_time: 0,
            foreign_found: false,
            just_installed: false,
            gather_deadline: None,
        }
    }

    /// The configuration the token circulates in (the future one in EVS).
    pub fn active(&self) -> &Members {
        if self.state == State::Evs {
            &self.future
        } else {
            &self.members
        }
    }
    pub fn active_id(&self) -> MembershipId {
        if self.state == State::Evs {
            self.future_id
        } else {
            self.id
        }
    }
    pub fn in_evs(&self) -> bool {
        self.state == State::Evs
    }
}

fn insert_member(list: &mut Vec<i32>, vid: i32) {
    if !list.contains(&vid) && list.len() < MAX_PROCS_RING {
        list.push(vid);
    }
}

impl Ring {
    fn proc_of(&self, vid: i32) -> Option<usize> {
        self.topo.index_of(vid as u32)
    }

    fn seg_of(&self, vid: i32) -> Option<usize> {
        self.proc_of(vid).map(|p| self.topo.procs[p].seg)
    }

    fn vid_of(&self, p: usize) -> i32 {
        self.topo.procs[p].vid as i32
    }

    fn in_conf(&self, m: &Members, vid: i32) -> bool {
        self.proc_of(vid).is_some_and(|p| m.contains(p))
    }

    /// Wall-clock seconds (`E_get_time().sec`).
    fn wall_secs(&self, now: Instant) -> i32 {
        let (at, secs) = self.epoch;
        (secs + now.saturating_duration_since(at).as_secs() as i64) as i32
    }

    /// A fresh id time: `max(now, Last_time_used + 1)`.
    fn next_time(&mut self, now: Instant) -> i32 {
        let mut t = self.wall_secs(now);
        if t <= self.memb.last_time_used {
            t = self.memb.last_time_used + 1;
        }
        self.memb.last_time_used = t;
        t
    }

    /// Ring ids must never repeat, across restarts too. An id whose
    /// representative is this daemon and which lies ahead of
    /// `Last_time_used` was made by an earlier run of this daemon (peers
    /// still hold it): later ids go past it. The original does not do this,
    /// and a daemon restarted within seconds of forming a ring can reuse that
    /// ring's id, so that a peer still in the old ring takes the new ring's
    /// packets for its own (see docs/ring.md, "Ring ids across restarts").
    pub(crate) fn note_ring_id(&mut self, id: MembershipId) {
        if id.proc_id as u32 == self.my_vid() && id.time > self.memb.last_time_used {
            self.memb.last_time_used = id.time;
        }
    }

    /// `Insert_rep` (§5.2).
    fn insert_rep(&self, list: &mut Vec<Rep>, rep: Rep) {
        let Some(seg) = self.seg_of(rep.vid) else { return };
        let seg = seg as i16;
        match rep.ty {
            RepType::Potential => {
                if list.iter().any(|r| r.seg == seg) {
                    return;
                }
            }
            RepType::Seg => {
                for r in list.iter_mut().filter(|r| r.seg == seg) {
                    match r.ty {
                        RepType::Potential => {
                            r.ty = RepType::Seg;
                            r.vid = rep.vid;
                            return;
                        }
                        RepType::Seg if r.vid == rep.vid => return,
                        RepType::Ring if r.vid == rep.vid => {
                            r.ty = RepType::Seg;
                            return;
                        }
                        _ => {}
                    }
                }
            }
            RepType::Ring => {
                for r in list.iter_mut().filter(|r| r.seg == seg) {
                    match r.ty {
                        RepType::Potential => {
                            r.ty = RepType::Ring;
                            r.vid = rep.vid;
                            return;
                        }
                        RepType::Seg if r.vid == rep.vid => {
                            r.ty = RepType::Ring;
                            return;
                        }
                        RepType::Ring if r.vid == rep.vid => return,
                        _ => {}
                    }
                }
            }
            RepType::Other(_) => return,
        }
        if list.len() < MAX_REPS {
            list.push(rep);
        }
    }

    /// `Smallest_rep`: index of the smallest representative.
    fn smallest_rep(&self, list: &[Rep]) -> usize {
        let mut cur = 0;
        for i in 1..list.len() {
            let (c, x) = (list[cur], list[i]);
            match c.ty {
                RepType::Seg if x.ty == RepType::Seg && x.seg < c.seg => cur = i,
                RepType::Ring => {
                    if x.ty == RepType::Ring {
                        if x.seg < c.seg {
                            cur = i;
                        } else if x.seg == c.seg {
                            let ci = self.proc_of(c.vid).map(|p| self.topo.procs[p].seg_pos);
                            let xi = self.proc_of(x.vid).map(|p| self.topo.procs[p].seg_pos);
                            if xi < ci {
                                cur = i;
                            }
                        }
                    } else if x.ty == RepType::Seg {
                        cur = i;
                    }
                }
                _ => {}
            }
        }
        cur
    }

    /// `Sort_reps`: repeatedly take the smallest, moving the last remaining
    /// entry into its slot.
    fn sort_reps(&self, list: &mut Vec<Rep>) {
        let mut rest = list.clone();
        list.clear();
        while !rest.is_empty() {
            let i = self.smallest_rep(&rest);
            list.push(rest[i]);
            rest.swap_remove(i);
        }
    }

    /// The smallest member (conf order) of a VID list.
    fn smallest_member(&self, list: &[i32]) -> Option<i32> {
        list.iter().copied().min_by_key(|&v| self.proc_of(v).unwrap_or(usize::MAX))
    }

    fn members_of(&self, vids: &[i32]) -> Members {
        Members::new(vids.iter().filter_map(|&v| self.proc_of(v)).collect())
    }

    fn vids(&self, m: &Members) -> Vec<i32> {
        m.as_slice().iter().map(|&p| self.vid_of(p)).collect()
    }

    /// Potential representatives per the OP rule of §5.3: for every other
    /// segment, its first daemon in `m`, else its first configured daemon.
    fn potential_from(&self, m: &Members, list: &mut Vec<Rep>) {
        let mine = self.topo.my_seg();
        for seg in 0..self.topo.segs.len() {
            if seg == mine {
                continue;
            }
            let p = self.topo.seg_leader(m, seg).or_else(|| self.topo.segs[seg].procs.first().copied());
            if let Some(p) = p {
                let rep = Rep { vid: self.vid_of(p), ty: RepType::Potential, seg: seg as i16 };
                self.insert_rep(list, rep);
            }
        }
    }

    // ---- sending ----------------------------------------------------------

    fn memb_header(&self, type_: u32) -> PacketHeader {
        PacketHeader { type_, proc_id: self.my_vid() as i32, ..PacketHeader::default() }
    }

    /// `Scast_alive`: ALIVE with `F_members` to my segment.
    fn scast_alive(&mut self) {
        tracing::info!(target: "spread::memb", "Scast_alive: State is {}", self.memb.state as i32);
        let mut body = Vec::new();
        push_short_members(self.params.order, &self.memb.f_members, &mut body);
        let h = self.memb_header(ALIVE_TYPE);
        let seg = self.topo.my_seg();
        self.scast_packet(seg, &h, &body);
    }

    fn join_body(&self) -> Vec<u8> {
        self.encode_join(self.memb.f_members.clone(), self.memb.f_reps_index, self.memb.f_reps.clone())
    }

    /// A JOIN body (no header) with these members and representatives.
    fn encode_join(&self, members: Vec<i32>, rep_index: i16, reps: Vec<Rep>) -> Vec<u8> {
        let p = JoinPacket {
            header: PacketHeader::default(),
            members,
            num_pending: 0,
            reps: RepList { rep_index, reps: reps.iter().map(|r| r.wire()).collect() },
        };
        let mut out = Vec::new();
        if p.encode(self.params.order, &mut out).is_err() {
            return Vec::new();
        }
        out.split_off(PACKET_HEADER_LEN)
    }

    /// `Send_join`: to my segment (when no ring is alive) and to every
    /// potential representative.
    fn send_join(&mut self, now: Instant) {
        tracing::info!(target: "spread::memb", "Send_join: State is {}", self.memb.state as i32);
        let body = self.join_body();
        let h = self.memb_header(JOIN_TYPE);
        if !self.memb.token_alive {
            let seg = self.topo.my_seg();
            self.scast_packet(seg, &h, &body);
        }
        let targets: Vec<i32> = self.memb.potential_reps.iter().map(|r| r.vid).collect();
        for v in targets {
            self.ucast_packet(v as u32, &h, &body);
        }
        self.timers.arm(Timer::SendJoin, now + self.params.timeouts.join);
    }

    fn send_refer(&mut self, to: i32, rep: i32, ty: RepType) {
        let mut h = self.memb_header(REFER_TYPE);
        h.memb_id = MembershipId { proc_id: rep, time: ty.to_i16() as i32 };
        self.ucast_packet(to as u32, &h, &[]);
    }

    /// `Net_ucast_token`: a form token to `vid`'s port P+1, twice.
    fn ucast_token_twice(&mut self, vid: i32, bytes: &[u8]) {
        if let Some(p) = self.proc_of(vid) {
            let to = self.topo.token_addr(p);
            self.push_datagram(to, bytes.to_vec());
            self.push_datagram(to, bytes.to_vec());
        }
    }

    fn stamp_token(&self, h: &mut TokenHeader) {
        h.transmiter_id = self.my_vid() as i32;
        h.conf_hash = self.params.hash;
    }

    // ---- transitions (§5.3) -------------------------------------------------

    /// `Memb_init`'s last step: a starting daemon runs a membership round.
    pub fn start(&mut self, now: Instant) {
        self.now = now;
        // Ring ids are (VID, seconds) and must never repeat. Within one run
        // `Last_time_used` guarantees it, but it can run ahead of the clock
        // (each attempt takes the next second), and the original starts a
        // restarted daemon from the clock again: a daemon restarted soon
        // after a burst of attempts could reuse a ring id its peers still
        // hold as their old ring, and then mix the two rings' packets. Ids
        // of a new run start ahead of the clock, past any such burst.
        self.memb.last_time_used = self.wall_secs(now).saturating_add(START_ID_MARGIN);
        self.token_loss(now);
    }

    /// `Memb_token_loss`.
    pub(crate) fn token_loss(&mut self, now: Instant) {
        let mut pot = Vec::new();
        match self.memb.state {
            State::Op => {
                let m = self.memb.members.clone();
                self.potential_from(&m, &mut pot);
            }
            State::Gather => {
                for r in self.memb.f_reps.clone().into_iter().skip(1) {
                    self.insert_rep(&mut pot, r);
                }
                let m = self.memb.members.clone();
                self.potential_from(&m, &mut pot);
            }
            State::Form => pot = self.memb.potential_reps.clone(),
            State::Evs => {
                self.backoff_membership();
                let f = self.memb.future.clone();
                self.potential_from(&f, &mut pot);
            }
            State::Seg | State::Represented => return,
        }
        self.stats.token_losses += 1;
        tracing::warn!(
            target: "spread::memb",
            "Memb_token_loss: ############### I lost my token, state was {}",
            self.memb.state as i32
        );
        self.memb.potential_reps = pot;
        self.memb.token_alive = false;
        self.set_threshold(BLOCK_REGULAR_DELIVERY);
        self.memb.just_installed = false;
        for t in [Timer::TokenLoss, Timer::SendJoin, Timer::FormOrFail, Timer::Hurry, Timer::Lookup, Timer::MergeProbe]
        {
            self.timers.cancel(t);
        }
        self.tok.last_token.type_ = 0;
        self.tok.last_token.seq = 0;
        self.tok.last_token.aru = 0;
        self.memb.members = Members::new(vec![self.topo.me]);
        self.shift_to_seg(now);
    }

    fn shift_to_op(&mut self) {
        self.memb.state = State::Op;
    }

    fn shift_to_seg(&mut self, now: Instant) {
        self.memb.state = State::Seg;
        self.memb.f_members = vec![self.my_vid() as i32];
        self.timers.arm(Timer::Alive, now);
        self.timers.arm(Timer::GatherOrRep, now + self.params.timeouts.seg);
    }

    fn gather_or_represented(&mut self, now: Instant) {
        self.memb.my_seg_rep = -1;
        if self.smallest_member(&self.memb.f_members) == Some(self.my_vid() as i32) {
            self.shift_to_gather(now);
        } else {
            self.shift_to_represented(now);
        }
    }

    fn shift_to_gather(&mut self, now: Instant) {
        self.memb.state = State::Gather;
        let ty = if self.memb.token_alive { RepType::Ring } else { RepType::Seg };
        self.memb.f_reps = vec![Rep { vid: self.my_vid() as i32, ty, seg: self.topo.my_seg() as i16 }];
        self.timers.cancel(Timer::Alive);
        self.timers.cancel(Timer::Lookup);
        self.timers.cancel(Timer::MergeProbe);
        self.timers.arm(Timer::SendJoin, now);
        self.arm_form_or_fail(now + self.params.timeouts.gather);
    }

    /// `Form_or_fail` at `at`, as the original schedules it.
    fn arm_form_or_fail(&mut self, at: Instant) {
        self.memb.gather_deadline = Some(at);
        self.timers.arm(Timer::FormOrFail, at);
    }

    /// Ours ([`Params::early_form`]): a JOIN has changed what this daemon,
    /// gathering, knows. If live rings are merging (its token is alive and
    /// every gathered representative is a ring's), it is the smallest
    /// representative, and every representative named in any JOIN has
    /// joined it, form `quiet` from now (each new JOIN starts the wait
    /// again); otherwise back to the original's schedule. Only the smallest
    /// forms, so the others, waiting for its FORM1, are not hurried back to
    /// OP; an original daemon among them takes the FORM1 as after its own
    /// `Gather_timeout`.
    fn consider_early_form(&mut self, now: Instant, changed: bool) {
        let Some(quiet) = self.params.early_form else { return };
        let Some(normal) = self.memb.gather_deadline else { return };
        let me = self.my_vid() as i32;
        let reps = &self.memb.f_reps;
        let ready = self.memb.token_alive
            && reps.len() > 1
            && reps.get(self.smallest_rep(reps)).map(|r| r.vid) == Some(me)
            && reps.iter().all(|r| r.ty == RepType::Ring)
            && self.memb.potential_reps.iter().all(|p| reps.iter().any(|r| r.vid == p.vid));
        if ready {
            if changed && now + quiet < normal {
                self.timers.arm(Timer::FormOrFail, now + quiet);
            }
        } else {
            self.timers.arm(Timer::FormOrFail, normal);
        }
    }

    fn shift_to_represented(&mut self, now: Instant) {
        self.memb.state = State::Represented;
        self.timers.cancel(Timer::Alive);
        self.timers.cancel(Timer::GatherOrRep);
        self.timers.arm(Timer::RepToSeg, now + self.params.timeouts.rep);
    }

    fn form_or_fail(&mut self, now: Instant) {
        let me = self.my_vid() as i32;
        let smallest = self.memb.f_reps.get(self.smallest_rep(&self.memb.f_reps)).map(|r| r.vid);
        if smallest == Some(me) {
            if self.memb.token_alive && self.memb.f_reps.len() == 1 {
                self.timers.cancel(Timer::SendJoin);
                self.shift_to_op();
                self.arm_lookup(now);
            } else {
                self.create_form1(now);
            }
        } else if self.memb.token_alive {
            self.timers.cancel(Timer::SendJoin);
            self.shift_to_op();
            self.arm_lookup(now);
        } else {
            tracing::info!(target: "spread::memb", "Form_or_fail: failed to gather");
            self.memb.f_members = vec![me];
            let mut pot = Vec::new();
            for r in self.memb.f_reps.clone().into_iter().skip(1) {
                self.insert_rep(&mut pot, r);
            }
            self.memb.potential_reps = pot;
            self.shift_to_gather(now);
        }
    }

    /// The lookup timer (`Lookup_timeout`), and our merge probe when on
    /// (which only a leader in OP sends).
    fn arm_lookup(&mut self, now: Instant) {
        self.timers.arm(Timer::Lookup, now + self.params.timeouts.lookup);
        if let Some(p) = self.params.merge_probe {
            self.timers.arm(Timer::MergeProbe, now + p);
        }
    }

    /// Ours only ([`Params::merge_probe`]): the leader in OP unicasts a JOIN
    /// naming itself as its ring's representative to every configured
    /// daemon outside the ring, and stays in OP. A daemon that gets it does
    /// what it does with any JOIN from outside: a ring leader in OP gathers
    /// and JOINs back, which brings this leader into GATHER too; a
    /// gathering one counts this ring in; others REFER, which OP ignores.
    /// So nothing changes unless someone outside can be reached, and then
    /// the rings merge as after a lookup.
    fn merge_probe(&mut self, now: Instant) {
        let Some(interval) = self.params.merge_probe else { return };
        if self.memb.state != State::Op || self.memb.members.leader() != Some(self.topo.me) {
            return;
        }
        let missing: Vec<u32> = (0..self.topo.procs.len())
            .filter(|&p| !self.memb.reg_members.contains(p))
            .map(|p| self.topo.procs[p].vid)
            .collect();
        if missing.is_empty() {
            return;
        }
        let me = Rep { vid: self.my_vid() as i32, ty: RepType::Ring, seg: self.topo.my_seg() as i16 };
        let body = self.encode_join(Vec::new(), self.memb.f_reps_index, vec![me]);
        let h = self.memb_header(JOIN_TYPE);
        for v in missing {
            self.ucast_packet(v, &h, &body);
        }
        self.timers.arm(Timer::MergeProbe, now + interval);
    }

    /// `Memb_lookup_new_members` (OP, leader): JOIN probes to daemons not in
    /// the ring.
    fn lookup_new_members(&mut self, now: Instant) {
        if self.memb.state != State::Op {
            return;
        }
        let me = self.my_vid() as i32;
        self.memb.potential_reps.clear();
        self.memb.f_reps = vec![Rep { vid: me, ty: RepType::Ring, seg: self.topo.my_seg() as i16 }];
        self.memb.f_members.clear();
        let body = self.join_body();
        let h = self.memb_header(JOIN_TYPE);
        let mut missing = 0;
        if self.topo.segs.len() == 1 {
            let seg = self.topo.my_seg();
            self.scast_packet(seg, &h, &body);
            missing += 1;
        } else {
            for p in 0..self.topo.procs.len() {
                if !self.memb.reg_members.contains(p) {
                    let v = self.topo.procs[p].vid;
                    self.ucast_packet(v, &h, &body);
                    missing += 1;
                }
            }
        }
        if missing > 0 {
            self.shift_to_gather(now);
        }
    }

    /// A membership timer fired.
    pub(crate) fn memb_timer(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Alive => {
                self.scast_alive();
                self.timers.arm(Timer::Alive, now + self.params.timeouts.alive);
            }
            Timer::GatherOrRep => self.gather_or_represented(now),
            Timer::RepToSeg => self.shift_to_seg(now),
            Timer::SendJoin => self.send_join(now),
            Timer::FormOrFail => self.form_or_fail(now),
            Timer::Lookup => self.lookup_new_members(now),
            Timer::MergeProbe => self.merge_probe(now),
            Timer::TokenLoss => self.token_loss(now),
            Timer::Hurry | Timer::DeliverReliable | Timer::DeliverAgreed => {}
        }
    }

    // ---- packets (§5.4) -----------------------------------------------------

    /// ALIVE from `s`.
    pub(crate) fn handle_alive(&mut self, now: Instant, s: i32) {
        tracing::info!(
            target: "spread::memb",
            "Memb_handle_message: handling alive message from {}, State is {}",
            dotted(s),
            self.memb.state as i32
        );
        match self.memb.state {
            State::Op => {
                if self.in_conf(&self.memb.members.clone(), s) {
                    self.token_loss(now);
                    insert_member(&mut self.memb.f_members, s);
                }
            }
            State::Seg => insert_member(&mut self.memb.f_members, s),
            State::Represented => self.timers.arm(Timer::RepToSeg, now + self.params.timeouts.rep),
            State::Gather => {
                if !self.memb.token_alive {
                    insert_member(&mut self.memb.f_members, s);
                } else if self.in_conf(&self.memb.members.clone(), s) {
                    self.token_loss(now);
                    insert_member(&mut self.memb.f_members, s);
                }
            }
            State::Form => {}
            State::Evs => {
                if self.in_conf(&self.memb.future.clone(), s) {
                    self.token_loss(now);
                    insert_member(&mut self.memb.f_members, s);
                }
            }
        }
    }

    /// JOIN from `s` carrying its representatives.
    pub(crate) fn handle_join(&mut self, now: Instant, s: i32, reps: &[RepInfo]) {
        tracing::info!(
            target: "spread::memb",
            "Memb_handle_message: handling join message from {}, State is {}",
            dotted(s),
            self.memb.state as i32
        );
        let Some(r0) = reps.first().map(Rep::from_wire) else { return };
        let my_seg = self.topo.my_seg();
        match self.memb.state {
            State::Op => {
                let m = self.memb.members.clone();
                if !self.in_conf(&m, s) {
                    if m.leader() == Some(self.topo.me) {
                        self.memb.potential_reps = vec![r0];
                        self.memb.f_members.clear();
                        self.shift_to_gather(now);
                    } else if r0.seg != my_seg as i16 || self.topo.seg_leader(&m, my_seg) == Some(self.topo.me) {
                        if let Some(l) = m.leader() {
                            let lv = self.vid_of(l);
                            self.send_refer(s, lv, RepType::Ring);
                        }
                    }
                } else if self.topo.segs.len() > 1 {
                    self.token_loss(now);
                }
            }
            State::Seg => {
                if self.seg_of(s) == Some(my_seg) && r0.ty == RepType::Seg {
                    self.memb.my_seg_rep = s;
                    self.shift_to_represented(now);
                    self.scast_alive();
                }
            }
            State::Represented => {
                if self.seg_of(s) == Some(my_seg) && r0.ty == RepType::Seg {
                    self.memb.my_seg_rep = s;
                    self.timers.arm(Timer::RepToSeg, now + self.params.timeouts.rep);
                    self.scast_alive();
                } else if self.memb.my_seg_rep != -1 {
                    let rep = self.memb.my_seg_rep;
                    self.send_refer(s, rep, RepType::Seg);
                }
            }
            State::Gather => {
                let known = (self.memb.f_reps.len(), self.memb.potential_reps.len());
                let mut f = std::mem::take(&mut self.memb.f_reps);
                self.insert_rep(&mut f, r0);
                self.memb.f_reps = f;
                let mut p = std::mem::take(&mut self.memb.potential_reps);
                for r in reps {
                    self.insert_rep(&mut p, Rep::from_wire(r));
                }
                self.memb.potential_reps = p;
                let i = self.smallest_rep(&self.memb.f_reps);
                if self.memb.f_reps.get(i).map(|r| r.vid) == Some(r0.vid) {
                    self.arm_form_or_fail(now + self.params.timeouts.gather);
                }
                let changed = known != (self.memb.f_reps.len(), self.memb.potential_reps.len());
                self.consider_early_form(now, changed);
            }
            State::Form => {}
            State::Evs => {
                if self.in_conf(&self.memb.future.clone(), s) {
                    self.token_loss(now);
                    insert_member(&mut self.memb.f_members, s);
                }
            }
        }
    }

    /// REFER from someone naming representative `v` of type `ty`.
    pub(crate) fn handle_refer(&mut self, v: i32, ty: i32) {
        tracing::info!(
            target: "spread::memb",
            "Memb_handle_message: handling refer message naming {}, State is {}",
            dotted(v),
            self.memb.state as i32
        );
        if self.memb.state != State::Gather {
            return;
        }
        let Some(seg) = self.seg_of(v) else { return };
        let ty = RepType::from_i16(ty as i16);
        let mut p = std::mem::take(&mut self.memb.potential_reps);
        self.insert_rep(&mut p, Rep { vid: v, ty, seg: seg as i16 });
        self.memb.potential_reps = p;
    }

    /// A data packet of another ring (`raw` as received).
    pub(crate) fn handle_foreign(&mut self, now: Instant, h: &PacketHeader, body: &[u8]) {
        if self.memb.state != State::Op || self.proc_of(h.proc_id).is_none() {
            return;
        }
        let m = self.memb.members.clone();
        if m.leader() == Some(self.topo.me) {
            self.lookup_new_members(now);
        } else if self.topo.seg_leader(&m, self.topo.my_seg()) == Some(self.topo.me) && !self.memb.foreign_found {
            self.memb.foreign_found = true;
            if let Some(l) = m.leader() {
                let lv = self.topo.procs[l].vid;
                self.ucast_packet(lv, h, body);
                self.ucast_packet(lv, h, body);
            }
        }
    }

    // ---- form tokens (§5.5, §5.6) -------------------------------------------

    /// My ring's record for a FORM1, holes from `(from, Highest_seq]`.
    fn my_ring_record(&self, from: i32) -> RingRecord {
        let me = self.my_vid() as i32;
        let holes = (from + 1..=self.tok.highest_seq).filter(|&s| !self.tok.slot_present(s)).collect();
        let mut commit_rest = Vec::new();
        for &c in &self.memb.commit_set {
            if c != me {
                commit_rest.push(c);
            }
        }
        RingRecord {
            memb_id: self.memb.id,
            trans_time: 0,
            aru: self.tok.aru,
            highest_seq: self.tok.highest_seq,
            holes,
            trans: vec![me],
            commit_rest,
        }
    }

    fn enter_form(&mut self, now: Instant) {
        self.timers.cancel(Timer::SendJoin);
        self.timers.cancel(Timer::Hurry);
        self.timers.arm(Timer::TokenLoss, now + self.params.timeouts.form);
        self.memb.token_alive = false;
        self.set_threshold(BLOCK_REGULAR_DELIVERY);
        self.memb.state = State::Form;
    }

    fn encode_form1(&self, t: &Form1Token) -> Option<Vec<u8>> {
        let mut t = t.clone();
        self.stamp_token(&mut t.header);
        let mut out = Vec::new();
        t.encode(self.params.order, &mut out).ok()?;
        Some(out)
    }

    /// FORM1 → FORM2 (§5.5): the reps block is replaced by an 8-byte
    /// placeholder id (the first 8 bytes of the reps block, as the original).
    fn to_form2(&self, t: &Form1Token, members: MemberList) -> Form2Token {
        let first = t.reps.reps.first().map(|r| r.proc_id).unwrap_or(0);
        let head = ((t.reps.rep_index as u16 as u32) << 16) | t.reps.reps.len() as u16 as u32;
        let placeholder = match self.params.order {
            Order::Little => MembershipId { proc_id: head as i32, time: first },
            Order::Big => MembershipId {
                proc_id: (((t.reps.reps.len() as u16 as u32) << 16) | t.reps.rep_index as u16 as u32) as i32,
                time: first,
            },
        };
        let mut h = t.header;
        h.type_ = FORM2_TYPE;
        Form2Token { header: h, members, new_memb_id: placeholder, rings: t.rings.clone() }
    }

    fn send_form2_to(&mut self, vid: i32, t: &Form2Token) {
        let mut t = t.clone();
        self.stamp_token(&mut t.header);
        let mut out = Vec::new();
        if t.encode(self.params.order, &mut out).is_ok() {
            self.ucast_token_twice(vid, &out);
        }
    }

    /// `Create_form1`: I am the smallest representative.
    fn create_form1(&mut self, now: Instant) {
        let me = self.my_vid() as i32;
        let time = self.next_time(now);
        let id = MembershipId { proc_id: me, time };
        tracing::info!(target: "spread::memb", "Create_form1: sending a form1 token for ring ( {me}, {time})");
        self.memb.form1_id = id;
        if self.memb.f_reps.first().is_some_and(|r| r.ty == RepType::Ring) {
            self.memb.f_members = self.vids(&self.memb.members.clone());
        }
        let reps_vids: Vec<i32> = self.memb.f_reps.iter().map(|r| r.vid).collect();
        self.memb.f_members.retain(|&m| m == me || !reps_vids.contains(&m));
        let mut f = std::mem::take(&mut self.memb.f_reps);
        self.sort_reps(&mut f);
        self.memb.f_reps = f;
        self.memb.f_reps_index = 1;
        let mut pot = Vec::new();
        for r in self.memb.f_reps.clone() {
            if r.seg != self.topo.my_seg() as i16 {
                self.insert_rep(&mut pot, Rep { ty: RepType::Potential, ..r });
            }
        }
        self.memb.potential_reps = pot;
        let record = self.my_ring_record(self.tok.my_aru);
        let members = MemberList { members: vec![me], pending: self.memb.f_members.iter().copied().skip(1).collect() };
        let header = TokenHeader {
            type_: FORM1_TYPE,
            proc_id: me,
            memb_id: id,
            seq: self.tok.highest_seq.saturating_add(3333),
            ..TokenHeader::default()
        };
        let t = Form1Token {
            header,
            members,
            reps: RepList { rep_index: 1, reps: self.memb.f_reps.iter().map(|r| r.wire()).collect() },
            rings: vec![record],
        };
        if let Some(&next) = t.members.pending.first() {
            if let Some(b) = self.encode_form1(&t) {
                self.ucast_token_twice(next, &b);
            }
        } else if t.reps.reps.len() > 1 {
            let next = t.reps.reps[1].proc_id;
            if let Some(b) = self.encode_form1(&t) {
                self.ucast_token_twice(next, &b);
            }
        } else {
            let f2 = self.to_form2(&t, MemberList { members: vec![], pending: vec![me] });
            self.send_form2_to(me, &f2);
        }
        self.enter_form(now);
    }

    /// A FORM1 arrived (already checked: hash, transmitter, source).
    pub(crate) fn handle_form1(&mut self, now: Instant, mut t: Form1Token) {
        tracing::info!(target: "spread::memb", "Memb_handle_token: handling form1 token, State is {}", self.memb.state as i32);
        match self.memb.state {
            State::Op if self.memb.members.leader() != Some(self.topo.me) => {}
            State::Represented | State::Gather => {}
            _ => return,
        }
        let me = self.my_vid() as i32;
        let my_min_seq = self.tok.highest_seq.saturating_add(3333);
        // Validation and member update; on failure nothing changes.
        match self.memb.state {
            State::Op | State::Represented => {
                if t.members.pending.first() != Some(&me) {
                    return;
                }
                let m = t.members.pending.remove(0);
                t.members.members.push(m);
            }
            _ => {
                let idx = t.reps.rep_index.max(0) as usize;
                let Some(r) = t.reps.reps.get(idx) else { return };
                let want = if self.memb.token_alive { RepType::Ring } else { RepType::Seg };
                if r.proc_id != me || r.rep_type != want || !t.members.pending.is_empty() {
                    return;
                }
                let mut fm = std::mem::take(&mut self.memb.f_members);
                fm.retain(|v| {
                    let in_token = t.members.members.contains(v);
                    let a_token_rep = *v != me && t.reps.reps.iter().any(|r| r.proc_id == *v);
                    let one_of_my_reps = *v != me && self.memb.f_reps.iter().any(|r| r.vid == *v);
                    !(in_token || a_token_rep || one_of_my_reps)
                });
                self.memb.f_members = fm;
                let add = if r.rep_type == RepType::Seg {
                    self.memb.f_members.clone()
                } else {
                    self.vids(&self.memb.members.clone())
                };
                if add.is_empty() || t.members.members.len() + add.len() > MAX_PROCS_RING {
                    return;
                }
                t.members.members.push(add[0]);
                t.members.pending = add[1..].to_vec();
                t.reps.rep_index += 1;
            }
        }
        t.header.proc_id = me;
        if t.header.seq < my_min_seq {
            t.header.seq = my_min_seq;
        }
        self.memb.form1_id = t.header.memb_id;
        let mut pot = Vec::new();
        for r in t.reps.reps.clone() {
            if r.seg_index != self.topo.my_seg() as i16 {
                self.insert_rep(&mut pot, Rep { vid: r.proc_id, ty: RepType::Potential, seg: r.seg_index });
            }
        }
        self.memb.potential_reps = pot;
        // Ring records: the others in order, then mine.
        let mut rings: Vec<RingRecord> = Vec::new();
        let mut old_mine = None;
        for r in t.rings.drain(..) {
            if r.memb_id == self.memb.id {
                old_mine = Some(r);
            } else {
                rings.push(r);
            }
        }
        match old_mine {
            None => {
                if rings.len() + 1 > MAX_FORM_REPS {
                    if let Some(i) = t.members.members.iter().position(|&v| v == me) {
                        t.members.members.remove(i);
                    }
                } else {
                    rings.push(self.my_ring_record(self.tok.last_discarded));
                }
            }
            Some(old) => {
                let mut rec = RingRecord {
                    memb_id: self.memb.id,
                    trans_time: 0,
                    aru: old.aru.max(self.tok.aru),
                    highest_seq: old.highest_seq.max(self.tok.highest_seq),
                    holes: old.holes.iter().copied().filter(|&s| !self.tok.slot_present(s)).collect(),
                    trans: Vec::new(),
                    commit_rest: Vec::new(),
                };
                if old.highest_seq < self.tok.highest_seq {
                    for s in old.highest_seq + 1..=self.tok.highest_seq {
                        if !self.tok.slot_present(s) {
                            rec.holes.push(s);
                        }
                    }
                }
                let mut set = Vec::new();
                for &v in &old.trans {
                    insert_member(&mut set, v);
                }
                if set.contains(&me) {
                    return;
                }
                insert_member(&mut set, me);
                let ntrans = set.len();
                for &v in &old.commit_rest {
                    insert_member(&mut set, v);
                }
                for &v in &self.memb.commit_set.clone() {
                    insert_member(&mut set, v);
                }
                rec.commit_rest = set.split_off(ntrans);
                rec.trans = set;
                rings.push(rec);
            }
        }
        t.rings = rings;
        if let Some(&next) = t.members.pending.first() {
            if let Some(b) = self.encode_form1(&t) {
                self.ucast_token_twice(next, &b);
            }
        } else if (t.reps.rep_index as usize) < t.reps.reps.len() {
            let next = t.reps.reps[t.reps.rep_index as usize].proc_id;
            if let Some(b) = self.encode_form1(&t) {
                self.ucast_token_twice(next, &b);
            }
        } else {
            let mut all = t.members.members.clone();
            all.sort_by_key(|&v| self.proc_of(v).unwrap_or(usize::MAX));
            let first = all.first().copied();
            let f2 = self.to_form2(&t, MemberList { members: vec![], pending: all });
            if let Some(first) = first {
                self.send_form2_to(first, &f2);
            }
        }
        self.timers.cancel(Timer::FormOrFail);
        self.timers.cancel(Timer::RepToSeg);
        self.enter_form(now);
    }

    /// A FORM2 arrived.
    pub(crate) fn handle_form2(&mut self, now: Instant, mut t: Form2Token) {
        tracing::info!(target: "spread::memb", "Memb_handle_token: handling form2 token, State is {}", self.memb.state as i32);
        if self.memb.state != State::Form {
            return;
        }
        let me = self.my_vid() as i32;
        if t.header.memb_id != self.memb.form1_id
            || t.members.pending.is_empty()
            || t.members.members.len() + t.members.pending.len() >= MAX_PROCS_RING
            || t.members.pending[0] != me
        {
            return;
        }
        let mut mine = None;
        for (i, r) in t.rings.iter().enumerate() {
            let nc = r.trans.len() + r.commit_rest.len();
            if r.trans.is_empty() || nc > MAX_PROCS_RING || r.holes.len() > MAX_SEQ_GAP as usize {
                return;
            }
            if r.memb_id == self.memb.id {
                mine = Some(i);
            }
        }
        let Some(mine) = mine else { return };
        let all: Vec<i32> = t.members.all().collect();
        if all.iter().any(|&v| self.proc_of(v).is_none()) {
            return;
        }
        t.header.proc_id = me;
        let m = t.members.pending.remove(0);
        t.members.members.push(m);
        self.tok.last_seq = t.header.seq;
        for r in &t.rings {
            self.note_ring_id(r.memb_id);
        }
        let mut memb_time = 0;
        if t.members.members.len() == 1 {
            memb_time = self.next_time(now);
            self.memb.last_time_used += 1;
            t.new_memb_id = MembershipId { proc_id: me, time: self.memb.last_time_used };
        }
        self.memb.future_id = t.new_memb_id;
        self.memb.future = self.members_of(&all);
        self.memb.net_members = self.memb.future.clone();
        self.tok.last_num_sent = 0;
        self.tok.last_num_retrans = 0;

        let rec = t.rings[mine].clone();
        let future = self.memb.future.clone();
        self.form2_adjust_packets(&rec, now);
        self.memb.future_commit = rec.trans.iter().chain(&rec.commit_rest).copied().collect();
        self.memb.future_trans = rec.trans.len();
        if rec.trans_time == 0 {
            if memb_time == 0 {
                memb_time = self.next_time(now);
            }
            t.rings[mine].trans_time = memb_time;
        }
        self.memb.trans_time = t.rings[mine].trans_time;

        let last = future.as_slice().last().copied();
        if last != Some(self.topo.me) {
            let mut t2 = t.clone();
            self.stamp_token(&mut t2.header);
            let mut out = Vec::new();
            if t2.encode(self.params.order, &mut out).is_ok() {
                let succ = self.topo.successor(&future, self.topo.me);
                let to = self.topo.token_addr(succ);
                self.push_datagram(to, out.clone());
                self.push_datagram(to, out);
            }
            self.tok.token_rounds = 0;
        } else {
            let h = TokenHeader {
                type_: 0,
                proc_id: me,
                memb_id: self.memb.future_id,
                seq: 0,
                aru: i32::MAX,
                aru_last_id: -1,
                ..TokenHeader::default()
            };
            self.send_token_header(&h, &[]);
            self.send_token_header(&h, &[]);
            self.tok.token_rounds = 1;
        }
        self.memb.token_alive = true;
        self.timers.arm(Timer::TokenLoss, now + self.params.token_timeout);
        self.tok.received_token_rounds = 0;
        self.tok.last_token.type_ = 0;
        self.tok.last_token.seq = 0;
        self.tok.last_token.aru = 0;
        self.tok.aru = 0;
        self.memb.state = State::Evs;
    }

    /// `Memb_commit` (EVS, §5.7).
    pub(crate) fn memb_commit(&mut self) {
        self.memb.commit_set = self.memb.future_commit.clone();
    }

    /// `Memb_transitional`: the transitional configuration (configured
    /// daemons among the first `num_trans` of the commit set), its id, and
    /// the commit configuration.
    pub(crate) fn memb_transitional(&mut self) -> (Members, MembershipId, Members) {
        let ntrans = self.memb.future_trans.min(self.memb.commit_set.len());
        let trans = self.members_of(&self.memb.commit_set[..ntrans]);
        let commit = self.members_of(&self.memb.commit_set);
        let leader = trans.leader().map(|p| self.vid_of(p)).unwrap_or(self.my_vid() as i32);
        let id = MembershipId { proc_id: leader, time: self.memb.trans_time };
        (trans, id, commit)
    }

    /// `Memb_regular`: the future configuration becomes the ring.
    pub(crate) fn memb_regular(&mut self, now: Instant) {
        self.memb.just_installed = true;
        self.memb.members = self.memb.future.clone();
        self.memb.id = self.memb.future_id;
        self.memb.reg_members = self.memb.members.clone();
        self.memb.commit_set = vec![self.my_vid() as i32];
        self.memb.foreign_found = false;
        if self.memb.members.leader() == Some(self.topo.me) {
            self.arm_lookup(now);
        }
        self.stats.membership_changes += 1;
        self.log_installed();
        self.shift_to_op();
        self.reload_singleton_installed(now);
    }

    /// What the original logs when a ring is installed (`Memb_regular`).
    fn log_installed(&self) {
        let procs = &self.topo.procs;
        let members = self.memb.members.as_slice();
        let segments: Vec<(&[std::net::SocketAddr], Vec<crate::logging::PrintedDaemon<'_>>)> = self
            .topo
            .segs
            .iter()
            .map(|seg| {
                let ds = seg
                    .procs
                    .iter()
                    .map(|&p| crate::logging::PrintedDaemon {
                        name: &procs[p].name,
                        ip: procs[p].addr.ip(),
                        vid: procs[p].vid,
                        member: members.contains(&p),
                    })
                    .collect();
                (seg.addrs.as_slice(), ds)
            })
            .collect();
        crate::logging::log_membership(
            &procs[self.topo.me].name,
            (self.memb.id.proc_id, self.memb.id.time),
            self.memb.members.leader() == Some(self.topo.me),
            &segments,
        );
    }

    /// Hand up a configuration change.
    pub(crate) fn up_configuration(&mut self, transitional: bool, m: &Members, id: MembershipId) {
        let vids = m.as_slice().iter().map(|&p| self.topo.procs[p].vid).collect();
        let up = if transitional { Up::Transitional { members: vids, id } } else { Up::Regular { members: vids, id } };
        if let Some(tap) = &mut self.config_tap {
            tap.push_back(up.clone());
        }
        self.push_up(up);
    }
}

/// Truncated `members_info` (ALIVE/JOIN): counts then the members.
fn push_short_members(order: Order, members: &[i32], out: &mut Vec<u8>) {
    order.push_i16(out, members.len().min(MAX_PROCS_RING) as i16);
    order.push_i16(out, 0);
    for &m in members.iter().take(MAX_PROCS_RING) {
        order.push_i32(out, m);
    }
}
/// A daemon id as the original's membership lines print it (`IP()`: the
/// 32-bit id as a dotted quad).
fn dotted(id: i32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(id as u32)
}
