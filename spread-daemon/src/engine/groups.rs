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
    groups: HashMap<Name32, Group, FxBuild>,
    /// Groups of each member (private group name), for KILL in name order.
    member_groups: HashMap<Name32, BTreeSet<Name32>, FxBuild>,
    state: GState,
    trans_memb: Vec<u32>,
    trans_memb_id: MembId,
    reg_memb: Vec<u32>,
    reg_memb_id: MembId,
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
        let all = cfg.vids.clone();
        let id = cfg.memb_id;
        Groups {
            cfg,
            groups: HashMap::default(),
            member_groups: HashMap::default(),
            state: GState::Op,
            trans_memb: all.clone(),
            trans_memb_id: id,
            reg_memb: all,
            reg_memb_id: id,
        }
    }

    pub fn get(&self, name: &Name32) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn num_groups(&self) -> usize {
        self.groups.len()
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
    fn notify_change(&self, g: &Group, cause: u32, changed_member: &Name32, joiner: Option<LocalMember>, is_join: bool, out: &mut Out) {
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
        self.trans_memb = t.to_vec();
        self.trans_memb_id = tid;
        match self.state {
            GState::Op => {
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
                self.state = GState::Trans;
            }
            GState::Gather => {
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
    /// (`G_handle_reg_memb`, GTRANS case). Purely subtractive changes settle
    /// at once with heavyweight CAUSED_BY_NETWORK notifications; otherwise
    /// the caller must run the GROUPS state exchange.
    pub fn handle_reg_memb(&mut self, r: &[u32], rid: MembId, out: &mut Out) -> RegOutcome {
        if self.state != GState::Trans {
            return RegOutcome::NeedsStateExchange;
        }
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
            RegOutcome::Settled
        } else {
            self.state = GState::Gather;
            RegOutcome::NeedsStateExchange
        }
    }

    /// Local recipients of a data message (`G_analize_groups`): the union of
    /// the local members of each named group and of the local sessions named
    /// by private groups. `lookup` resolves a private group name to a local
    /// session slot. Duplicates are removed when there are several names.
    pub fn route(&self, groups: impl Iterator<Item = Name32>, many: bool, lookup: impl Fn(&Name32) -> Option<u32>, out: &mut Vec<u32>) {
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
pub fn norm_name(f: &[u8]) -> Name32 {
    let b = name_bytes(f);
    if b.len() < MAX_GROUP_NAME && f.len() == MAX_GROUP_NAME && f[b.len()..].iter().all(|&c| c == 0) {
        let mut n = [0u8; MAX_GROUP_NAME];
        n.copy_from_slice(f);
        return n;
    }
    name32(b)
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
fn send_heavyweight(g: &Group, my_idx: usize, joiner: Option<&Name32>, joiner_local: Option<LocalMember>, out: &mut Out) {
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
}
