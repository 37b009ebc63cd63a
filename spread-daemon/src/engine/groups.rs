//! The groups layer (daemon spec §6, `groups.c`): group state, JOIN / LEAVE /
//! KILL processing on the ordered stream, client membership notifications and
//! the routing of data messages to local sessions.
//!
//! The state is the same at every daemon of a ring; this daemon only writes to
//! its *local* members, identified by their session slot. Every notification
//! is encoded once and the same buffer is handed to every recipient.

use std::collections::{BTreeSet, HashMap};

use bytes::{BufMut, Bytes, BytesMut};
use spread_wire::consts::*;
use spread_wire::endian::{Order, ARCH_ENDIAN};
use spread_wire::names::{name32, name_bytes, parse_private_group, Name32};
use spread_wire::{GroupId, Header};

use super::fxhash::FxBuild;

/// Longest daemon name (MAX_PROC_NAME − 1).
const MAX_PROC_NAME_BYTES: usize = 19;

/// Local members per group beyond which joins are refused (§7.3).
pub const MAX_LOCAL_GROUP_MEMBERS: usize = 3122;

/// A daemon membership id: (representative VID, formation time).
pub type MembId = (i32, i32);

/// The membership id of a partitioned daemon entry.
pub const UNKNOWN_MEMB_ID: MembId = (-1, -1);

/// A local member of a group: its session slot and whether it gets membership
/// messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMember {
    pub slot: u32,
    pub memb: bool,
}

/// The members one daemon contributes to a group.
#[derive(Clone, Debug)]
pub struct DaemonMembers {
    /// Index of the daemon in the configuration (sort key).
    pub conf_idx: usize,
    pub vid: u32,
    /// The configuration with which this daemon's entry is synchronised;
    /// [`UNKNOWN_MEMB_ID`] = partitioned.
    pub memb_id: MembId,
    pub members: BTreeSet<Name32>,
}

impl DaemonMembers {
    pub fn partitioned(&self) -> bool {
        self.memb_id == UNKNOWN_MEMB_ID
    }
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: Name32,
    pub gid: GroupId,
    /// The group went through a configuration change not yet settled.
    pub changed: bool,
    /// Daemons with members, in configuration order.
    pub daemons: Vec<DaemonMembers>,
    pub num_members: usize,
    /// Local sessions in the group (`mboxes`).
    pub local: Vec<LocalMember>,
}

impl Group {
    /// Member names after the change: daemons in conf order, names sorted.
    fn member_names(&self) -> impl Iterator<Item = &Name32> {
        self.daemons.iter().flat_map(|d| d.members.iter())
    }

    fn memb_id(&self) -> MembId {
        (self.gid.proc_id, self.gid.time)
    }

    fn has_memb_sessions(&self) -> bool {
        self.local.iter().any(|m| m.memb)
    }

    fn remove_local(&mut self, slot: u32) {
        if let Some(p) = self.local.iter().position(|m| m.slot == slot) {
            self.local.swap_remove(p);
        }
    }

    /// `G_update_daemon_memb_ids`: every established entry takes the group's
    /// membership id.
    fn update_daemon_memb_ids(&mut self) {
        let id = self.memb_id();
        for d in &mut self.daemons {
            if !d.partitioned() {
                d.memb_id = id;
            }
        }
    }
}

/// State of the groups layer (`Gstate`; values as in the status reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GState {
    /// Operational.
    Op = 1,
    /// Between a transitional and a regular configuration.
    Trans = 2,
    /// Exchanging group state (GROUPS messages).
    Gather = 3,
    /// A transitional configuration arrived while gathering.
    GatherTrans = 4,
}

/// What a regular configuration needs from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegOutcome {
    /// Settled (purely subtractive change): back to [`GState::Op`].
    Settled,
    /// Daemons joined: group state must be exchanged with GROUPS messages
    /// (§6.2–6.4; to be provided with the token ring).
    NeedsStateExchange,
}

/// Who is where: the configured daemons and this daemon's place among them.
#[derive(Clone, Debug)]
pub struct GroupsConfig {
    /// Daemon names in configuration order.
    pub daemons: Vec<Vec<u8>>,
    /// Their VIDs, same order.
    pub vids: Vec<u32>,
    /// Index of this daemon in `daemons`.
    pub my_idx: usize,
    /// The ring membership id in force: (representative VID, formation time).
    pub memb_id: MembId,
}

/// A notification produced by the groups layer: write `frame` to `slot`.
pub type Out = Vec<(u32, Bytes)>;

pub struct Groups {
    cfg: GroupsConfig,
    /// Keyed by names clients choose without limit: a keyed hasher (random
    /// keys per process), so no one can craft colliding names; the fast one,
    /// as every data message looks its groups up here.
    groups: HashMap<Name32, Group, FxBuild>,
    /// Groups of each member (private group name), for KILL in name order.
    member_groups: HashMap<Name32, BTreeSet<Name32>, FxBuild>,
    state: GState,
    trans_memb: Vec<u32>,
    trans_memb_id: MembId,
    reg_memb: Vec<u32>,
    reg_memb_id: MembId,
    /// Daemons (VIDs, conf order) whose group state is known identical to
    /// mine; the first one speaks for the set in a state exchange.
    synced: Vec<u32>,
    gather: Gathered,
    /// GROUPS data buffers of my synced set, in build order.
    bufs: Vec<Vec<u8>>,
    bufs_fresh: bool,
    /// GROUPS messages to hand to the ordering layer, in sending order.
    to_send: Vec<GroupsMessage>,
}

/// A GROUPS message this daemon must send (on the GROUPS down queue): the
/// full frame and whether it goes AGREED (the last one) or RELIABLE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupsMessage {
    pub frame: Bytes,
    pub agreed: bool,
}

/// Result of delivering one GROUPS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherOutcome {
    /// Not for this exchange (stale membership id, unknown sender, wrong state).
    Ignored,
    /// Counted; more are expected.
    Pending,
    /// The exchange is complete: group state merged, notifications sent,
    /// back to [`GState::Op`] (or on to [`GState::Trans`] after a cascade).
    /// The caller returns to the normal down queue and delivery threshold.
    Done,
}

/// GROUPS messages gathered from other synced sets, per representative.
#[derive(Default, Debug)]
struct Gathered {
    /// The final message of my own set arrived.
    own_complete: bool,
    /// Newest representative first; each list newest message first.
    lists: Vec<GatherList>,
    num_mess: usize,
    num_daemons: u32,
}

#[derive(Debug)]
struct GatherList {
    rep: u32,
    complete: bool,
    /// (data, foreign byte order)
    msgs: Vec<(Vec<u8>, bool)>,
}

/// Size of a group record's fixed part (name, gid, changed, daemon count).
const GROUPS_BUF_GROUP_INFO_SIZE: usize = MAX_GROUP_NAME + 12 + 2 + 2;
/// Size of a daemon record's fixed part (VID, memb id, member count).
const GROUPS_BUF_DAEMON_INFO_SIZE: usize = 4 + 8 + 2;
/// Capacity of one GROUPS buffer.
const GROUPS_BUF_SIZE: usize = 100_000;

/// A bounds-checked reader over GROUPS data.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
    order: Order,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        let o = self.order;
        self.take(4).map(|b| o.read_u32(b))
    }
    fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        let v = u16::from_ne_bytes([b[0], b[1]]);
        Some(if self.order == Order::NATIVE { v } else { v.swap_bytes() })
    }
    fn raw_u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_ne_bytes([b[0], b[1]]))
    }
    fn name(&mut self) -> Option<Name32> {
        let b = self.take(MAX_GROUP_NAME)?;
        let mut n = [0u8; MAX_GROUP_NAME];
        n.copy_from_slice(b);
        Some(n)
    }
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }
}

/// `G_compare_memb_ids`: unknown ids after all others; otherwise the sign of
/// the C `int` differences of proc_id, then time.
fn cmp_memb_ids(a: MembId, b: MembId) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a == UNKNOWN_MEMB_ID, b == UNKNOWN_MEMB_ID) {
        (true, true) => return Equal,
        (true, false) => return Greater,
        (false, true) => return Less,
        _ => {}
    }
    if a.0 != b.0 {
        return a.0.wrapping_sub(b.0).cmp(&0);
    }
    a.1.wrapping_sub(b.1).cmp(&0)
}

impl Groups {
    pub fn new(cfg: GroupsConfig) -> Groups {
        let me = vec![cfg.vids.get(cfg.my_idx).copied().unwrap_or(0)];
        let id = cfg.memb_id;
        Groups {
            cfg,
            groups: HashMap::default(),
            member_groups: HashMap::default(),
            state: GState::Op,
            trans_memb: me.clone(),
            trans_memb_id: id,
            reg_memb: me.clone(),
            reg_memb_id: id,
            synced: me,
            gather: Gathered::default(),
            bufs: Vec::new(),
            bufs_fresh: false,
            to_send: Vec::new(),
        }
    }

    /// A configuration reload (daemon spec §1.9, `G_signal_conf_reload`):
    /// the daemons and their order become the new file's, and every group's
    /// daemon list, the synced set and the configurations held are sorted
    /// again in the new order (daemons no longer configured go last, until
    /// the membership change that follows removes them).
    pub fn reconfigure(&mut self, daemons: Vec<Vec<u8>>, vids: Vec<u32>, my_idx: usize) {
        self.cfg.daemons = daemons;
        self.cfg.vids = vids;
        self.cfg.my_idx = my_idx;
        let rank = |vids: &[u32], v: u32| vids.iter().position(|x| *x == v).unwrap_or(usize::MAX / 2);
        for g in self.groups.values_mut() {
            for d in &mut g.daemons {
                d.conf_idx = rank(&self.cfg.vids, d.vid);
            }
            g.daemons.sort_by_key(|d| (d.conf_idx, d.vid));
        }
        for list in [&mut self.synced, &mut self.trans_memb, &mut self.reg_memb] {
            list.sort_by_key(|v| (rank(&self.cfg.vids, *v), *v));
        }
    }

    /// The synced set (VIDs, conf order).
    pub fn synced_set(&self) -> &[u32] {
        &self.synced
    }

    fn my_vid(&self) -> u32 {
        self.vid_of(self.cfg.my_idx)
    }

    fn conf_idx_of_vid(&self, vid: u32) -> Option<usize> {
        self.cfg.vids.iter().position(|v| *v == vid)
    }

    fn is_synced_leader(&self, vid: u32) -> bool {
        self.synced.first() == Some(&vid)
    }

    /// GROUPS messages to send now, in order (empty unless a state exchange
    /// started and this daemon speaks for its synced set).
    pub fn take_groups_messages(&mut self) -> Vec<GroupsMessage> {
        std::mem::take(&mut self.to_send)
    }

    pub fn get(&self, name: &Name32) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }

    /// Memberships of local sessions, over all groups (walks the groups).
    pub fn local_memberships(&self) -> usize {
        self.groups.values().map(|g| g.local.len()).sum()
    }

    pub fn state(&self) -> GState {
        self.state
    }

    /// Local members of a group (0 for an unknown group).
    pub fn num_local(&self, name: &Name32) -> usize {
        self.groups.get(name).map_or(0, |g| g.local.len())
    }

    fn daemon_idx(&self, private_group: &[u8]) -> Option<usize> {
        let (_, proc_) = parse_private_group(private_group)?;
        self.cfg.daemons.iter().position(|d| d.as_slice() == proc_)
    }

    fn vid_of(&self, idx: usize) -> u32 {
        self.cfg.vids.get(idx).copied().unwrap_or(0)
    }

    fn sorted_names(&self) -> Vec<Name32> {
        let mut v: Vec<Name32> = self.groups.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Notifications after a join/leave/kill changed `g`.
    fn notify_change(
        &self,
        g: &Group,
        cause: u32,
        changed_member: &Name32,
        joiner: Option<LocalMember>,
        is_join: bool,
        out: &mut Out,
    ) {
        if !g.has_memb_sessions() {
            return;
        }
        if g.changed {
            let j = if is_join { Some(changed_member) } else { None };
            send_heavyweight(g, self.cfg.my_idx, j, joiner, out);
            let t = trans_memb_frame(g);
            push_memb(g, &t, out);
        } else {
            let f = lightweight_memb(g, cause, changed_member);
            push_memb(g, &f, out);
        }
    }

    /// JOIN of `member` (a private group name) to `group`. `local` is the
    /// member's session if it is local to this daemon.
    pub fn join(&mut self, member: &Name32, group: &Name32, local: Option<LocalMember>, out: &mut Out) {
        tracing::info!(target: "spread::groups", "G_handle_join: {} joins group {}", shown(member), shown(group));
        if !matches!(self.state, GState::Op | GState::Trans) {
            return;
        }
        let Some(didx) = self.daemon_idx(member) else { return };
        let vid = self.vid_of(didx);
        let new_id = if self.state == GState::Op { self.reg_memb_id } else { self.trans_memb_id };
        let in_trans = self.state == GState::Op || self.trans_memb.contains(&vid);
        let g = self.groups.entry(*group).or_insert_with(|| Group {
            name: *group,
            gid: GroupId { proc_id: new_id.0, time: new_id.1, index: 0 },
            changed: false,
            daemons: Vec::new(),
            num_members: 0,
            local: Vec::new(),
        });
        let pos = match g.daemons.binary_search_by_key(&didx, |d| d.conf_idx) {
            Ok(p) => p,
            Err(p) => {
                let memb_id = if in_trans { (g.gid.proc_id, g.gid.time) } else { UNKNOWN_MEMB_ID };
                g.daemons.insert(p, DaemonMembers { conf_idx: didx, vid, memb_id, members: BTreeSet::new() });
                p
            }
        };
        if !g.daemons[pos].members.insert(*member) {
            return;
        }
        g.num_members += 1;
        g.gid.index = g.gid.index.wrapping_add(1);
        if let Some(l) = local {
            g.local.push(l);
        }
        if g.daemons[pos].partitioned() {
            g.changed = true;
        }
        self.member_groups.entry(*member).or_default().insert(*group);
        let g = &self.groups[group];
        self.notify_change(g, CAUSED_BY_JOIN, member, local, true, out);
    }

    /// LEAVE of `member` from `group`. `local` is the member's session if
    /// local (it gets the self-leave first, if it is a membership session).
    pub fn leave(&mut self, member: &Name32, group: &Name32, local: Option<LocalMember>, out: &mut Out) {
        tracing::info!(target: "spread::groups", "G_handle_leave: {} leaves group {}", shown(member), shown(group));
        if !matches!(self.state, GState::Op | GState::Trans) {
            return;
        }
        let Some(didx) = self.daemon_idx(member) else { return };
        let Some(g) = self.groups.get_mut(group) else { return };
        let Ok(pos) = g.daemons.binary_search_by_key(&didx, |d| d.conf_idx) else { return };
        if !g.daemons[pos].members.contains(member) {
            return;
        }
        if let Some(l) = local {
            if l.memb {
                out.push((l.slot, self_leave(&g.name)));
            }
            g.remove_local(l.slot);
        }
        g.daemons[pos].members.remove(member);
        if g.daemons[pos].members.is_empty() {
            g.daemons.remove(pos);
        }
        g.num_members -= 1;
        if let Some(set) = self.member_groups.get_mut(member) {
            set.remove(group);
            if set.is_empty() {
                self.member_groups.remove(member);
            }
        }
        if g.num_members == 0 {
            self.groups.remove(group);
            return;
        }
        g.gid.index = g.gid.index.wrapping_add(1);
        let g = &self.groups[group];
        self.notify_change(g, CAUSED_BY_LEAVE, member, None, false, out);
    }

    /// KILL of `member`: removed from every group it is in, in group-name
    /// order; the others get CAUSED_BY_DISCONNECT.
    pub fn kill(&mut self, member: &Name32, local_slot: Option<u32>, out: &mut Out) {
        tracing::info!(target: "spread::groups", "G_handle_kill: {} is killed", shown(member));
        if !matches!(self.state, GState::Op | GState::Trans) {
            return;
        }
        let Some(didx) = self.daemon_idx(member) else { return };
        let Some(set) = self.member_groups.remove(member) else { return };
        for gname in set {
            let Some(g) = self.groups.get_mut(&gname) else { continue };
            let Ok(pos) = g.daemons.binary_search_by_key(&didx, |d| d.conf_idx) else { continue };
            if !g.daemons[pos].members.remove(member) {
                continue;
            }
            if let Some(s) = local_slot {
                g.remove_local(s);
            }
            if g.daemons[pos].members.is_empty() {
                g.daemons.remove(pos);
            }
            g.num_members -= 1;
            if g.num_members == 0 {
                self.groups.remove(&gname);
                continue;
            }
            g.gid.index = g.gid.index.wrapping_add(1);
            let g = &self.groups[&gname];
            self.notify_change(g, CAUSED_BY_DISCONNECT, member, None, false, out);
        }
    }

    /// Remove the partitioned daemon entries of a group (and their members).
    fn eliminate_partitioned(&mut self, gname: &Name32) -> bool {
        let Some(g) = self.groups.get_mut(gname) else { return false };
        let mut removed = Vec::new();
        g.daemons.retain(|d| {
            if d.partitioned() {
                removed.extend(d.members.iter().copied());
                false
            } else {
                true
            }
        });
        g.num_members -= removed.len();
        for m in &removed {
            if let Some(set) = self.member_groups.get_mut(m) {
                set.remove(gname);
                if set.is_empty() {
                    self.member_groups.remove(m);
                }
            }
        }
        !removed.is_empty()
    }

    /// A transitional configuration `t` (VIDs) with id `tid` was delivered
    /// (`G_handle_trans_memb`).
    pub fn handle_trans_memb(&mut self, t: &[u32], tid: MembId, out: &mut Out) {
        tracing::info!(target: "spread::groups", "G_handle_trans_memb:  with ({}, {}) id, state {}", tid.0 as u32, tid.1, self.state as u8);
        match self.state {
            GState::Op => {
                self.trans_memb = t.to_vec();
                self.trans_memb_id = tid;
                for name in self.sorted_names() {
                    let Some(g) = self.groups.get_mut(&name) else { continue };
                    let mut hit = false;
                    for d in &mut g.daemons {
                        if !t.contains(&d.vid) {
                            d.memb_id = UNKNOWN_MEMB_ID;
                            hit = true;
                        }
                    }
                    if hit {
                        if g.has_memb_sessions() {
                            let f = trans_memb_frame(g);
                            push_memb(g, &f, out);
                        }
                        g.gid = GroupId { proc_id: tid.0, time: tid.1, index: 1 };
                        g.changed = true;
                        g.update_daemon_memb_ids();
                    }
                }
                self.synced.retain(|v| t.contains(v));
                self.state = GState::Trans;
            }
            GState::Gather => {
                self.trans_memb = t.to_vec();
                self.trans_memb_id = tid;
                for g in self.groups.values_mut() {
                    if g.daemons.iter().any(|d| !t.contains(&d.vid)) {
                        g.changed = true;
                    }
                }
                self.state = GState::GatherTrans;
            }
            // Cannot happen (the original aborts); ignore.
            GState::Trans | GState::GatherTrans => {}
        }
    }

    /// A regular configuration `r` with id `rid` was delivered
    /// (`G_handle_reg_memb`). Purely subtractive changes settle at once with
    /// heavyweight CAUSED_BY_NETWORK notifications; otherwise a GROUPS state
    /// exchange starts: send [`Groups::take_groups_messages`] on the GROUPS
    /// down queue, keep client messages back and deliver at most AGREED
    /// early until [`Groups::handle_groups`] says [`GatherOutcome::Done`].
    pub fn handle_reg_memb(&mut self, r: &[u32], rid: MembId, out: &mut Out) -> RegOutcome {
        tracing::info!(
            target: "spread::groups",
            "G_handle_reg_memb:  with ({}, {}) id, {} daemons, state {}",
            rid.0 as u32,
            rid.1,
            r.len(),
            self.state as u8
        );
        match self.state {
            GState::Trans => {
                self.reg_memb = r.to_vec();
                self.reg_memb_id = rid;
                let subtractive = self.trans_memb.len() == self.reg_memb.len();
                for name in self.sorted_names() {
                    if !self.groups.get(&name).is_some_and(|g| g.changed) {
                        continue;
                    }
                    self.eliminate_partitioned(&name);
                    let Some(g) = self.groups.get_mut(&name) else { continue };
                    if g.num_members == 0 {
                        self.groups.remove(&name);
                        continue;
                    }
                    if subtractive {
                        g.gid = GroupId { proc_id: rid.0, time: rid.1, index: 1 };
                        g.changed = false;
                        g.update_daemon_memb_ids();
                        let g = &self.groups[&name];
                        if g.has_memb_sessions() {
                            send_heavyweight(g, self.cfg.my_idx, None, None, out);
                        }
                    }
                }
                if subtractive {
                    self.state = GState::Op;
                    return RegOutcome::Settled;
                }
                if self.is_synced_leader(self.my_vid()) {
                    self.build_bufs();
                    self.bufs_fresh = true;
                    self.queue_groups_messages();
                }
                self.state = GState::Gather;
                RegOutcome::NeedsStateExchange
            }
            GState::GatherTrans => {
                self.reg_memb = r.to_vec();
                self.reg_memb_id = rid;
                // Merge what completed of the previous exchange, drop the rest.
                let own_complete = self.gather.own_complete;
                let lists = std::mem::take(&mut self.gather.lists);
                for l in lists {
                    if own_complete && l.complete {
                        let mut sset = Vec::new();
                        for (data, foreign) in &l.msgs {
                            self.mess_to_groups(data, *foreign, &mut sset);
                            self.bufs_fresh = false;
                        }
                        self.add_to_synced_set(&sset);
                    }
                }
                let t = self.trans_memb.clone();
                for name in self.sorted_names() {
                    let Some(g) = self.groups.get_mut(&name) else { continue };
                    let before = g.daemons.len();
                    let mut removed = Vec::new();
                    g.daemons.retain(|d| {
                        if t.contains(&d.vid) {
                            true
                        } else {
                            removed.extend(d.members.iter().copied());
                            false
                        }
                    });
                    if g.daemons.len() != before {
                        g.num_members -= removed.len();
                        self.bufs_fresh = false;
                        if g.num_members == 0 {
                            self.groups.remove(&name);
                        } else {
                            g.changed = true;
                        }
                        for m in removed {
                            self.forget_membership(&m, &name);
                        }
                    }
                }
                let before = self.synced.len();
                self.synced.retain(|v| t.contains(v));
                if self.synced.len() != before {
                    self.bufs_fresh = false;
                }
                self.gather = Gathered::default();
                if self.is_synced_leader(self.my_vid()) {
                    if self.bufs_fresh {
                        self.stamp_bufs();
                    } else {
                        self.build_bufs();
                        self.bufs_fresh = true;
                    }
                    self.queue_groups_messages();
                }
                self.state = GState::Gather;
                RegOutcome::NeedsStateExchange
            }
            // Cannot happen (the original aborts).
            GState::Op | GState::Gather => RegOutcome::NeedsStateExchange,
        }
    }

    fn forget_membership(&mut self, member: &Name32, group: &Name32) {
        if let Some(set) = self.member_groups.get_mut(member) {
            set.remove(group);
            if set.is_empty() {
                self.member_groups.remove(member);
            }
        }
    }

    /// `G_add_to_synced_set`: merge a disjoint set, keeping conf order.
    fn add_to_synced_set(&mut self, other: &[u32]) {
        let mut all: Vec<u32> = self.synced.iter().chain(other.iter()).copied().collect();
        all.sort_by_key(|v| self.conf_idx_of_vid(*v).unwrap_or(usize::MAX));
        all.dedup();
        self.synced = all;
    }

    /// `G_build_new_groups_bufs`: this set's group state in GROUPS buffers.
    fn build_bufs(&mut self) {
        self.bufs.clear();
        let names = self.sorted_names();
        let o = Order::NATIVE;
        let (mut gi, mut di) = (0usize, 0usize);
        let mut first = true;
        loop {
            let mut buf = Vec::with_capacity(1024);
            buf.extend_from_slice(&(self.reg_memb_id.0 as u32).to_ne_bytes());
            buf.extend_from_slice(&(self.reg_memb_id.1 as u32).to_ne_bytes());
            if first {
                buf.push(1);
                o.push_u32(&mut buf, self.synced.len() as u32);
                for v in &self.synced {
                    o.push_u32(&mut buf, *v);
                }
            } else {
                buf.push(0);
            }
            first = false;
            while gi < names.len() {
                let g = &self.groups[&names[gi]];
                if GROUPS_BUF_GROUP_INFO_SIZE + HEADER_LEN > GROUPS_BUF_SIZE.saturating_sub(buf.len()) {
                    break;
                }
                buf.extend_from_slice(&g.name);
                g.gid.encode_in(o, &mut buf);
                buf.extend_from_slice(&(g.changed as u16).to_ne_bytes());
                let count_at = buf.len();
                buf.extend_from_slice(&[0, 0]);
                let mut n = 0u16;
                let mut full = false;
                while di < g.daemons.len() {
                    let d = &g.daemons[di];
                    let need = GROUPS_BUF_DAEMON_INFO_SIZE + d.members.len() * MAX_GROUP_NAME + HEADER_LEN;
                    if need > GROUPS_BUF_SIZE.saturating_sub(buf.len()) {
                        full = true;
                        break;
                    }
                    o.push_u32(&mut buf, d.vid);
                    o.push_u32(&mut buf, g.gid.proc_id as u32);
                    o.push_u32(&mut buf, g.gid.time as u32);
                    buf.extend_from_slice(&(d.members.len() as u16).to_ne_bytes());
                    for m in &d.members {
                        buf.extend_from_slice(m);
                    }
                    n += 1;
                    di += 1;
                }
                buf[count_at..count_at + 2].copy_from_slice(&n.to_ne_bytes());
                if full {
                    break;
                }
                gi += 1;
                di = 0;
            }
            self.bufs.push(buf);
            if gi >= names.len() {
                break;
            }
            // A daemon record that can never fit would loop forever; the
            // join limit (MAX_LOCAL_GROUP_MEMBERS) keeps records small, but
            // stay bounded regardless.
            if self.bufs.len() > 10_000 {
                break;
            }
        }
    }

    /// `G_stamp_groups_bufs`: put the current membership id in front.
    fn stamp_bufs(&mut self) {
        let id = self.reg_memb_id;
        for b in &mut self.bufs {
            if b.len() >= 8 {
                b[0..4].copy_from_slice(&(id.0 as u32).to_ne_bytes());
                b[4..8].copy_from_slice(&(id.1 as u32).to_ne_bytes());
            }
        }
    }

    /// `G_send_groups_messages`: the last-built buffer goes first; all
    /// RELIABLE except the first-built one, which goes last as AGREED.
    fn queue_groups_messages(&mut self) {
        let mut name = [0u8; MAX_GROUP_NAME];
        let dn = &self.cfg.daemons[self.cfg.my_idx.min(self.cfg.daemons.len().saturating_sub(1))];
        let n = dn.len().min(MAX_PROC_NAME_BYTES);
        name[..n].copy_from_slice(&dn[..n]);
        name[MAX_GROUP_NAME - 4..].copy_from_slice(&(self.synced.len() as u32).to_ne_bytes());
        self.to_send.clear();
        for (i, b) in self.bufs.iter().enumerate().rev() {
            let agreed = i == 0;
            let t = GROUPS_MESS | if agreed { AGREED_MESS } else { RELIABLE_MESS };
            let h = Header {
                type_: t | ARCH_ENDIAN,
                sender: name,
                num_groups: 0,
                hint: ARCH_ENDIAN,
                data_len: b.len() as i32,
            };
            let mut f = BytesMut::with_capacity(HEADER_LEN + b.len());
            f.put_slice(&h.encode());
            f.put_slice(b);
            self.to_send.push(GroupsMessage { frame: f.freeze(), agreed });
        }
    }

    /// A GROUPS message was delivered (`G_handle_groups`): `frame` is the
    /// whole message (header + data) as it came out of the ordering layer.
    pub fn handle_groups(&mut self, frame: &[u8], out: &mut Out) -> GatherOutcome {
        if !matches!(self.state, GState::Gather | GState::GatherTrans) {
            return GatherOutcome::Ignored;
        }
        let Some(h) = Header::decode_slice(frame) else { return GatherOutcome::Ignored };
        let foreign = h.is_foreign();
        let order = if foreign {
            if Order::NATIVE == Order::Little {
                Order::Big
            } else {
                Order::Little
            }
        } else {
            Order::NATIVE
        };
        let data = &frame[HEADER_LEN..];
        let data = &data[..(h.data_len.max(0) as usize).min(data.len())];
        let mut c = Cursor { b: data, at: 0, order };
        let (Some(p), Some(t)) = (c.i32(), c.i32()) else { return GatherOutcome::Ignored };
        if (p, t) != self.reg_memb_id {
            return GatherOutcome::Ignored;
        }
        let sender = name_bytes(&h.sender[..MAX_GROUP_NAME - 4]);
        let Some(didx) = self.cfg.daemons.iter().position(|d| d.as_slice() == sender) else {
            return GatherOutcome::Ignored;
        };
        let vid = self.vid_of(didx);
        let own = self.is_synced_leader(vid);
        let list_idx = if own {
            None
        } else {
            match self.gather.lists.iter().position(|l| l.rep == vid) {
                Some(i) => {
                    self.gather.lists[i].msgs.insert(0, (data.to_vec(), foreign));
                    Some(i)
                }
                None => {
                    self.gather
                        .lists
                        .insert(0, GatherList { rep: vid, complete: false, msgs: vec![(data.to_vec(), foreign)] });
                    Some(0)
                }
            }
        };
        self.gather.num_mess += 1;
        tracing::info!(
            target: "spread::groups",
            "G_handle_groups: GROUPS message received from {} - msgs {}, daemons {}",
            shown(&h.sender),
            self.gather.num_mess,
            self.gather.num_daemons
        );
        if h.type_ & AGREED_MESS != 0 {
            let raw = [h.sender[28], h.sender[29], h.sender[30], h.sender[31]];
            let n = u32::from_ne_bytes(raw);
            let n = if foreign { n.swap_bytes() } else { n };
            self.gather.num_daemons = self.gather.num_daemons.saturating_add(n);
            match list_idx {
                None => self.gather.own_complete = true,
                Some(i) => self.gather.lists[i].complete = true,
            }
        }
        if self.gather.num_daemons as usize != self.reg_memb.len() {
            return GatherOutcome::Pending;
        }
        tracing::info!(
            target: "spread::groups",
            "G_handle_groups: Last GROUPS message received - msgs {}, daemons {}",
            self.gather.num_mess,
            self.gather.num_daemons
        );
        self.compute_and_notify(out);
        let cascaded = self.state == GState::GatherTrans;
        self.state = GState::Op;
        if cascaded {
            let (t, tid) = (self.trans_memb.clone(), self.trans_memb_id);
            self.handle_trans_memb(&t, tid, out);
        }
        GatherOutcome::Done
    }

    /// `G_compute_and_notify`.
    fn compute_and_notify(&mut self, out: &mut Out) {
        tracing::info!(target: "spread::groups", "G_compute_and_notify: {} groups", self.groups.len());
        let lists = std::mem::take(&mut self.gather.lists);
        for l in lists {
            let mut sset = Vec::new();
            for (data, foreign) in &l.msgs {
                self.mess_to_groups(data, *foreign, &mut sset);
            }
            self.add_to_synced_set(&sset);
        }
        let rid = self.reg_memb_id;
        for name in self.sorted_names() {
            let Some(g) = self.groups.get_mut(&name) else { continue };
            if !g.changed {
                continue;
            }
            g.gid = GroupId { proc_id: rid.0, time: rid.1, index: 1 };
            g.changed = false;
            let g = &self.groups[&name];
            if g.has_memb_sessions() {
                send_heavyweight(g, self.cfg.my_idx, None, None, out);
            }
            if let Some(g) = self.groups.get_mut(&name) {
                g.update_daemon_memb_ids();
            }
        }
        self.gather = Gathered::default();
        self.bufs.clear();
        self.bufs_fresh = false;
    }

    /// `G_mess_to_groups`: merge one GROUPS message into the state. Malformed
    /// data stops the parse at the first field that does not fit.
    fn mess_to_groups(&mut self, data: &[u8], foreign: bool, sset: &mut Vec<u32>) {
        let order = if foreign {
            if Order::NATIVE == Order::Little {
                Order::Big
            } else {
                Order::Little
            }
        } else {
            Order::NATIVE
        };
        let mut c = Cursor { b: data, at: 0, order };
        if c.take(8).is_none() {
            return;
        }
        let Some(flag) = c.take(1) else { return };
        if flag[0] == 1 {
            let Some(n) = c.u32() else { return };
            for _ in 0..n.min(1024) {
                let Some(v) = c.u32() else { return };
                sset.push(v);
            }
        }
        while !c.done() {
            let Some(gname) = c.name() else { return };
            let gname = norm_name(&gname);
            let (Some(p), Some(t), Some(i)) = (c.i32(), c.i32(), c.i32()) else { return };
            let Some(changed) = c.raw_u16() else { return };
            let Some(ndmn) = c.u16() else { return };
            let g = self.groups.entry(gname).or_insert_with(|| Group {
                name: gname,
                gid: GroupId { proc_id: p, time: t, index: i },
                changed: false,
                daemons: Vec::new(),
                num_members: 0,
                local: Vec::new(),
            });
            if changed != 0 {
                g.changed = true;
            }
            for _ in 0..ndmn {
                let (Some(vid), Some(mp), Some(mt), Some(nm)) = (c.u32(), c.i32(), c.i32(), c.u16()) else { return };
                let mut members = BTreeSet::new();
                for _ in 0..nm {
                    let Some(m) = c.name() else { return };
                    members.insert(norm_name(&m));
                }
                let g = self.groups.get_mut(&gname).expect("just inserted");
                if (mp, mt) != (g.gid.proc_id, g.gid.time) {
                    g.changed = true;
                }
                let conf_idx = self.cfg.vids.iter().position(|v| *v == vid).unwrap_or(usize::MAX / 2);
                g.num_members += members.len();
                let pos = g.daemons.partition_point(|d| (d.conf_idx, d.vid) < (conf_idx, vid));
                for m in &members {
                    self.member_groups.entry(*m).or_default().insert(gname);
                }
                let g = self.groups.get_mut(&gname).expect("present");
                g.daemons.insert(pos, DaemonMembers { conf_idx, vid, memb_id: (mp, mt), members });
            }
        }
    }

    /// Local recipients of a data message (`G_analize_groups`): the union of
    /// the local members of each named group and of the local sessions named
    /// by private groups. `lookup` resolves a private group name to a local
    /// session slot. Duplicates are removed when there are several names.
    pub fn route(
        &self,
        groups: impl Iterator<Item = Name32>,
        many: bool,
        lookup: impl Fn(&Name32) -> Option<u32>,
        out: &mut Vec<u32>,
    ) {
        for name in groups {
            if name[0] != b'#' {
                if let Some(g) = self.groups.get(&name) {
                    out.extend(g.local.iter().map(|m| m.slot));
                }
            } else if let Some(s) = lookup(&name) {
                out.push(s);
            }
        }
        if many && out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// Normalise a 32-byte name field from the wire: the bytes up to its first
/// NUL, NUL-padded (at most 31 bytes).
#[inline]
/// A group or member name as text, for log lines.
fn shown(n: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
    String::from_utf8_lossy(&n[..end])
}

pub fn norm_name(f: &[u8]) -> Name32 {
    let Ok(field) = <&Name32>::try_from(f) else { return name32(name_bytes(f)) };
    // A word at a time: find the first NUL (a NUL-padded name has its first
    // NUL in the first word that has one) and clear every byte from there.
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut n = *field;
    n[MAX_GROUP_NAME - 1] = 0;
    let mut cut = false;
    for w in n.chunks_exact_mut(8) {
        if cut {
            w.fill(0);
            continue;
        }
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // Bits set at NUL bytes (and possibly above the first one, never below).
        let z = v.wrapping_sub(LO) & !v & HI;
        if z != 0 {
            let first = (z.trailing_zeros() / 8) as usize;
            w[first..].fill(0);
            cut = true;
        }
    }
    n
}

fn push_memb(g: &Group, frame: &Bytes, out: &mut Out) {
    for m in &g.local {
        if m.memb {
            out.push((m.slot, frame.clone()));
        }
    }
}

fn header_bytes(type_: u32, sender: &Name32, num_groups: usize, data_len: usize) -> [u8; HEADER_LEN] {
    Header {
        type_: type_ | ARCH_ENDIAN,
        sender: *sender,
        num_groups: num_groups as i32,
        hint: ARCH_ENDIAN,
        data_len: data_len as i32,
    }
    .encode()
}

/// `G_send_lightweight_memb`: REG_MEMB | cause, all members, one vs-set with
/// the changed member.
pub fn lightweight_memb(g: &Group, cause: u32, changed: &Name32) -> Bytes {
    let data_len = 12 + 4 + 4 + 4 + MAX_GROUP_NAME;
    let mut b = BytesMut::with_capacity(HEADER_LEN + MAX_GROUP_NAME * g.num_members + data_len);
    b.put_slice(&header_bytes(REG_MEMB_MESS | cause, &g.name, g.num_members, data_len));
    for n in g.member_names() {
        b.put_slice(n);
    }
    let o = Order::NATIVE;
    let mut body = Vec::with_capacity(data_len);
    g.gid.encode_in(o, &mut body);
    o.push_u32(&mut body, 1);
    o.push_u32(&mut body, 0);
    o.push_u32(&mut body, 1);
    body.extend_from_slice(changed);
    b.put_slice(&body);
    b.freeze()
}

/// `G_build_trans_mess`: TRANSITION_MESS carrying the group's current id.
pub fn trans_memb_frame(g: &Group) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER_LEN + 12);
    b.put_slice(&header_bytes(TRANSITION_MESS, &g.name, 0, 12));
    let mut body = Vec::with_capacity(12);
    g.gid.encode_in(Order::NATIVE, &mut body);
    b.put_slice(&body);
    b.freeze()
}

/// `G_send_heavyweight_join` / `G_send_heavyweight_memb`: REG_MEMB |
/// CAUSED_BY_NETWORK with one vs-set per group of daemons sharing a
/// membership id (sorted by that id, then conf order; partitioned daemons
/// last, each alone). A `joiner` is taken out of its daemon's set and
/// appended as a final singleton set; if it is local it gets its own copy
/// whose offset points at that set. All other local membership sessions get
/// the common frame.
fn send_heavyweight(
    g: &Group,
    my_idx: usize,
    joiner: Option<&Name32>,
    joiner_local: Option<LocalMember>,
    out: &mut Out,
) {
    let o = Order::NATIVE;
    let mut order: Vec<&DaemonMembers> = g.daemons.iter().collect();
    order.sort_by(|a, b| cmp_memb_ids(a.memb_id, b.memb_id).then(a.conf_idx.cmp(&b.conf_idx)));
    let mut sets: Vec<u8> = Vec::new();
    let mut num_sets = 0u32;
    let mut local_off = 0u32;
    let mut cur: Option<(MembId, usize)> = None; // (memb id, offset of its count)
    for d in order {
        let new_set = match cur {
            None => true,
            Some((id, _)) => id == UNKNOWN_MEMB_ID || id != d.memb_id,
        };
        if new_set {
            num_sets += 1;
            cur = Some((d.memb_id, sets.len()));
            sets.extend_from_slice(&[0; 4]);
        }
        let Some((_, count_at)) = cur else { continue };
        if d.conf_idx == my_idx {
            local_off = count_at as u32;
        }
        let mut n = o.read_u32(&sets[count_at..count_at + 4]);
        for m in &d.members {
            if joiner == Some(m) {
                continue;
            }
            sets.extend_from_slice(m);
            n += 1;
        }
        o.write_u32(&mut sets[count_at..count_at + 4], n);
    }
    let joiner_off = sets.len() as u32;
    if let Some(j) = joiner {
        num_sets += 1;
        o.push_u32(&mut sets, 1);
        sets.extend_from_slice(j);
    }
    let build = |off: u32| -> Bytes {
        let data_len = 12 + 4 + 4 + sets.len();
        let mut b = BytesMut::with_capacity(HEADER_LEN + MAX_GROUP_NAME * g.num_members + data_len);
        b.put_slice(&header_bytes(REG_MEMB_MESS | CAUSED_BY_NETWORK, &g.name, g.num_members, data_len));
        for n in g.member_names() {
            b.put_slice(n);
        }
        let mut body = Vec::with_capacity(20);
        g.gid.encode_in(o, &mut body);
        o.push_u32(&mut body, num_sets);
        o.push_u32(&mut body, off);
        b.put_slice(&body);
        b.put_slice(&sets);
        b.freeze()
    };
    let common = build(local_off);
    let skip = joiner_local.map(|l| l.slot);
    for m in &g.local {
        if m.memb && Some(m.slot) != skip {
            out.push((m.slot, common.clone()));
        }
    }
    if let Some(l) = joiner_local {
        if l.memb {
            out.push((l.slot, build(joiner_off)));
        }
    }
}

/// `G_send_self_leave`: CAUSED_BY_LEAVE, no members, no body.
pub fn self_leave(group: &Name32) -> Bytes {
    Bytes::copy_from_slice(&header_bytes(CAUSED_BY_LEAVE, group, 0, 0))
}

/// A reject message for a refused message (§2.7.2): `header` is the original
/// (already in daemon order, `type_` possibly edited), `frame` its bytes.
pub fn reject_message(header: &Header, old_type: u32, frame: &[u8], sender_pg: &Name32) -> Bytes {
    let ng = header.num_groups.max(0) as usize;
    let dl = header.data_len.max(0) as usize;
    let groups = &frame[HEADER_LEN..HEADER_LEN + ng * MAX_GROUP_NAME];
    let body = &frame[HEADER_LEN + ng * MAX_GROUP_NAME..HEADER_LEN + ng * MAX_GROUP_NAME + dl];
    let (out_groups, new_ng): (Vec<u8>, usize) = if ng >= MAX_GROUPS_PER_MESSAGE {
        let mut g = groups[..(MAX_GROUPS_PER_MESSAGE - 1) * MAX_GROUP_NAME].to_vec();
        g.extend_from_slice(sender_pg);
        (g, MAX_GROUPS_PER_MESSAGE)
    } else {
        let mut g = groups.to_vec();
        g.extend_from_slice(sender_pg);
        (g, ng + 1)
    };
    let h = Header {
        type_: REJECT_MESS | (header.type_ & SELF_DISCARD) | ARCH_ENDIAN,
        sender: header.sender,
        num_groups: new_ng as i32,
        hint: header.hint,
        data_len: header.data_len,
    };
    let mut b = BytesMut::with_capacity(HEADER_LEN + 4 + out_groups.len() + dl);
    b.put_slice(&h.encode());
    let mut ot = Vec::with_capacity(4);
    Order::NATIVE.push_u32(&mut ot, old_type);
    b.put_slice(&ot);
    b.put_slice(&out_groups);
    b.put_slice(body);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise `norm_name` against the plain definition: bytes up to
    /// the first NUL, at most 31, NUL-padded.
    #[test]
    fn norm_name_matches_definition() {
        let reference = |f: &[u8]| name32(name_bytes(f));
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let alphabet = [0u8, 1, 0x7f, 0x80, 0x81, 0xff, b'a', b'#', 0x01, 0xfe];
        for _ in 0..20_000 {
            let mut f = [0u8; MAX_GROUP_NAME];
            for b in f.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = alphabet[(x % alphabet.len() as u64) as usize];
            }
            // Mostly names without early NULs, so long names are covered too.
            if !x.is_multiple_of(3) {
                for b in f.iter_mut().filter(|b| **b == 0) {
                    *b = b'z';
                }
                f[(x >> 32) as usize % MAX_GROUP_NAME] = 0;
            }
            assert_eq!(norm_name(&f), reference(&f), "{f:?}");
        }
        assert_eq!(norm_name(&[b'a'; 32]), reference(&[b'a'; 32]));
        assert_eq!(norm_name(b"abc"), name32(b"abc"));
        assert_eq!(norm_name(&[0u8; 32]), [0u8; 32]);
    }

    fn cfg() -> GroupsConfig {
        GroupsConfig { daemons: vec![b"d1".to_vec()], vids: vec![0x5c8d7aef], my_idx: 0, memb_id: (0x5c8d7aef, 1000) }
    }

    #[test]
    fn join_leave_kill_indexes() {
        let mut g = Groups::new(cfg());
        let (a, b) = (name32(b"#alice#d1"), name32(b"#bob#d1"));
        let g1 = name32(b"g1");
        let mut out = Vec::new();
        g.join(&a, &g1, Some(LocalMember { slot: 0, memb: true }), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.len(), 48 + 32 + 56);
        g.join(&b, &g1, Some(LocalMember { slot: 1, memb: false }), &mut out);
        assert_eq!(out.len(), 2, "non-membership session gets nothing");
        g.join(&b, &g1, Some(LocalMember { slot: 1, memb: false }), &mut out);
        assert_eq!(out.len(), 2, "second join of a member is ignored");
        assert_eq!(g.get(&g1).unwrap().gid.index, 2);
        out.clear();
        g.leave(&a, &g1, Some(LocalMember { slot: 0, memb: true }), &mut out);
        assert_eq!(out.len(), 1, "self-leave only; bob has no membership");
        assert_eq!(out[0].1.len(), 48);
        assert_eq!(g.get(&g1).unwrap().gid.index, 3);
        out.clear();
        g.kill(&b, Some(1), &mut out);
        assert!(g.get(&g1).is_none());
        assert!(out.is_empty());
        // unknown daemon: ignored
        g.join(&name32(b"#x#d9"), &g1, None, &mut out);
        assert!(g.get(&g1).is_none());
    }

    #[test]
    fn routing_dedupes() {
        let mut g = Groups::new(cfg());
        let mut out = Vec::new();
        let (g1, g2) = (name32(b"g1"), name32(b"g2"));
        g.join(&name32(b"#a#d1"), &g1, Some(LocalMember { slot: 3, memb: true }), &mut out);
        g.join(&name32(b"#b#d1"), &g1, Some(LocalMember { slot: 5, memb: true }), &mut out);
        g.join(&name32(b"#b#d1"), &g2, Some(LocalMember { slot: 5, memb: true }), &mut out);
        let mut r = Vec::new();
        let lookup = |n: &Name32| if n == &name32(b"#b#d1") { Some(5) } else { None };
        g.route([g1, g2, name32(b"#b#d1"), name32(b"nope")].into_iter(), true, lookup, &mut r);
        assert_eq!(r, vec![3, 5]);
    }

    #[test]
    fn norm() {
        let mut f = [0u8; 32];
        f[..2].copy_from_slice(b"g1");
        f[5] = 0xff;
        assert_eq!(norm_name(&f), name32(b"g1"));
        assert_eq!(norm_name(&[b'a'; 32]), name32(&[b'a'; 31]));
    }

    #[test]
    fn reconfigure_sorts_daemon_lists_in_the_new_order() {
        let cfg = GroupsConfig {
            daemons: vec![b"d1".to_vec(), b"d2".to_vec(), b"d3".to_vec()],
            vids: vec![10, 20, 30],
            my_idx: 0,
            memb_id: (10, 1000),
        };
        let mut g = Groups::new(cfg);
        g.synced = vec![10, 20, 30];
        let mut grp = Group {
            name: crate::engine::name(b"g"),
            gid: GroupId::default(),
            changed: false,
            daemons: Vec::new(),
            num_members: 0,
            local: Vec::new(),
        };
        for (i, v) in [10u32, 20, 30].into_iter().enumerate() {
            grp.daemons.push(DaemonMembers { conf_idx: i, vid: v, memb_id: (10, 1000), members: BTreeSet::new() });
        }
        g.groups.insert(crate::engine::name(b"g"), grp);
        // d3 moves first, d2 is removed, d1 stays.
        g.reconfigure(vec![b"d3".to_vec(), b"d1".to_vec()], vec![30, 10], 1);
        let got: Vec<(usize, u32)> =
            g.groups[&crate::engine::name(b"g")].daemons.iter().map(|d| (d.conf_idx, d.vid)).collect();
        assert_eq!(got, vec![(0, 30), (1, 10), (usize::MAX / 2, 20)]);
        assert_eq!(g.synced_set(), &[30, 10, 20]);
        assert_eq!(g.my_vid(), 10);
    }
}
