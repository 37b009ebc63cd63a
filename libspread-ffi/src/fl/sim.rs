//! Test double for the SP layer: one in-memory "daemon" with Spread's
//! single-daemon group semantics (agreed order = call order), used by the FL
//! unit tests. Mailboxes can be marked as running on a host of the other byte
//! order: their FL trailers then reach others byte-swapped with
//! `endian_mismatch = 1`, as SP reports a foreign sender.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::CStr;
use std::sync::Mutex;

use spread_wire::consts::*;

use super::machine::{name_key, name_str, Name, SpApi, SpRecv, FL_MIN_LEGAL_MESS_TYPE, VULNERABLE_MESS};

#[derive(Default)]
struct SimBox {
    private: Name,
    queue: VecDeque<SpRecv>,
}

#[derive(Default)]
struct Grp {
    members: Vec<i32>,
    index: i32,
    /// Distinguishes incarnations of a group (the real daemon restarts the
    /// index too; a different ring time keeps the tests' view ids unique).
    era: i32,
}

/// A data frame handed to SP: (sender mbox, service, groups, mess_type, body).
pub type SentFrame = (i32, i32, Vec<Name>, i16, Vec<u8>);

#[derive(Default)]
struct Inner {
    boxes: BTreeMap<i32, SimBox>,
    groups: BTreeMap<Name, Grp>,
    next_mbox: i32,
    eras: i32,
    foreign: HashSet<i32>,
    /// Network partition of each mailbox (absent = 0); data reaches only the
    /// sender's partition.
    part: BTreeMap<i32, u32>,
    /// Counter for view ids of network events.
    net_events: i32,
    /// Every data frame handed to SP: (sender mbox, service, groups, mess_type, body).
    sent: Vec<SentFrame>,
}

#[derive(Default)]
pub struct Sim {
    inner: Mutex<Inner>,
}

pub fn name(s: &str) -> Name {
    name_key(s.as_bytes())
}

fn memb_body(gid: [i32; 3], member: &Name) -> Vec<u8> {
    let mut b = Vec::new();
    for v in gid {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    b.extend_from_slice(&1u32.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes());
    b.extend_from_slice(member);
    b
}

/// Swap the FL trailer fields of a body written on a host of the other order.
fn swap_trailers(service: i32, mess_type: i16, body: &mut [u8]) {
    let mut end = body.len();
    if service & SUBGROUP_CAST as i32 != 0 {
        end = end.saturating_sub(32);
    }
    if mess_type < FL_MIN_LEGAL_MESS_TYPE && end >= 12 {
        for i in 0..3 {
            body[end - 12 + 4 * i..end - 8 + 4 * i].reverse();
        }
        end -= 12;
        if mess_type == VULNERABLE_MESS && end >= 2 {
            body[end - 2..end].reverse();
        }
    }
}

impl Inner {
    fn private_of(&self, mbox: i32) -> Name {
        self.boxes.get(&mbox).map(|b| b.private).unwrap_or([0; 32])
    }

    fn names(&self, members: &[i32]) -> Vec<Name> {
        members.iter().map(|m| self.private_of(*m)).collect()
    }

    fn push(&mut self, to: i32, r: SpRecv) {
        if let Some(b) = self.boxes.get_mut(&to) {
            b.queue.push_back(r);
        }
    }

    fn sort(&self, members: &mut [i32]) {
        members.sort_by_key(|m| self.private_of(*m));
    }

    /// Tell the remaining members of `group` that `who` changed it.
    fn announce(&mut self, group: &Name, cause: u32, who: &Name) {
        let Some(g) = self.groups.get_mut(group) else { return };
        g.index += 1;
        let gid = [7, 1000 + g.era, g.index];
        let members = g.members.clone();
        let names = self.names(&members);
        for (i, m) in members.iter().enumerate() {
            let body = memb_body(gid, who);
            self.push(
                *m,
                SpRecv {
                    ret: body.len() as i32,
                    service: (REG_MEMB_MESS | cause) as i32,
                    sender: *group,
                    num_groups: names.len() as i32,
                    groups: names.clone(),
                    mess_type: i as i16,
                    endian_mismatch: 0,
                    body,
                },
            );
        }
    }

    /// A network membership for the members in `sets` (one vs-set each).
    fn network_view(&mut self, group: &Name, sets: &[Vec<i32>]) {
        self.net_events += 1;
        let gid = [500 + self.net_events, 9000, 1];
        let mut all: Vec<i32> = sets.iter().flatten().copied().collect();
        self.sort(&mut all);
        let names = self.names(&all);
        let mut sorted_sets: Vec<Vec<i32>> = sets.to_vec();
        for s in sorted_sets.iter_mut() {
            self.sort(s);
        }
        for m in &all {
            let mut body: Vec<u8> = gid.iter().flat_map(|v| v.to_ne_bytes()).collect();
            body.extend_from_slice(&(sorted_sets.len() as u32).to_ne_bytes());
            let local_at = body.len();
            body.extend_from_slice(&0u32.to_ne_bytes());
            let start = body.len();
            for s in &sorted_sets {
                if s.contains(m) {
                    let off = (body.len() - start) as u32;
                    body[local_at..local_at + 4].copy_from_slice(&off.to_ne_bytes());
                }
                body.extend_from_slice(&(s.len() as u32).to_ne_bytes());
                for x in s {
                    body.extend_from_slice(&self.private_of(*x));
                }
            }
            let idx = all.iter().position(|x| x == m).unwrap_or(0) as i16;
            self.push(
                *m,
                SpRecv {
                    ret: body.len() as i32,
                    service: (REG_MEMB_MESS | CAUSED_BY_NETWORK) as i32,
                    sender: *group,
                    num_groups: names.len() as i32,
                    groups: names.clone(),
                    mess_type: idx,
                    endian_mismatch: 0,
                    body,
                },
            );
        }
    }

    fn remove_member(&mut self, mbox: i32, group: &Name, cause: u32) -> bool {
        let who = self.private_of(mbox);
        let Some(g) = self.groups.get_mut(group) else { return false };
        let Some(pos) = g.members.iter().position(|m| *m == mbox) else { return false };
        g.members.remove(pos);
        if cause == CAUSED_BY_LEAVE {
            self.push(
                mbox,
                SpRecv { ret: 0, service: CAUSED_BY_LEAVE as i32, sender: *group, mess_type: -1, ..Default::default() },
            );
        }
        if self.groups.get(group).is_some_and(|g| g.members.is_empty()) {
            self.groups.remove(group);
        } else {
            self.announce(group, cause, &who);
        }
        true
    }

    fn gone(&mut self, mbox: i32) {
        let groups: Vec<Name> = self.groups.keys().copied().collect();
        for g in groups {
            self.remove_member(mbox, &g, CAUSED_BY_DISCONNECT);
        }
        self.boxes.remove(&mbox);
    }

    fn cast(&mut self, from: i32, service: i32, dests: &[Name], mess_type: i16, parts: &[&[u8]]) -> i32 {
        if !self.boxes.contains_key(&from) {
            return ILLEGAL_SESSION;
        }
        if service & REGULAR_MESS as i32 == 0 {
            return ILLEGAL_SERVICE;
        }
        let body: Vec<u8> = parts.concat();
        self.sent.push((from, service, dests.to_vec(), mess_type, body.clone()));
        let mut to: Vec<i32> = Vec::new();
        for d in dests {
            let k = name_key(d);
            if name_str(&k).first() == Some(&b'#') {
                to.extend(self.boxes.iter().filter(|(_, b)| b.private == k).map(|(m, _)| *m));
            } else if let Some(g) = self.groups.get(&k) {
                to.extend(g.members.iter().copied());
            }
        }
        let mut seen = HashSet::new();
        to.retain(|m| seen.insert(*m));
        let my_part = self.part.get(&from).copied().unwrap_or(0);
        to.retain(|m| self.part.get(m).copied().unwrap_or(0) == my_part);
        if service & SELF_DISCARD as i32 != 0 {
            to.retain(|m| *m != from);
        }
        let foreign = self.foreign.contains(&from);
        let mut wire_body = body.clone();
        if foreign {
            swap_trailers(service, mess_type, &mut wire_body);
        }
        let sender = self.private_of(from);
        for m in to {
            let em = (foreign != self.foreign.contains(&m)) as i32;
            let mut b = wire_body.clone();
            if foreign && em == 0 {
                // Both on the foreign order: they see the sender's native bytes.
                b = body.clone();
            }
            if !foreign && em == 1 {
                swap_trailers(service, mess_type, &mut b);
            }
            let r = SpRecv {
                ret: b.len() as i32,
                service: service & !(ENDIAN_RESERVED as i32),
                sender,
                num_groups: dests.len() as i32,
                groups: dests.to_vec(),
                mess_type,
                endian_mismatch: em,
                body: b,
            };
            self.push(m, r);
        }
        body.len() as i32
    }
}

impl Sim {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Mark a mailbox as living on a host of the other byte order.
    pub fn set_foreign(&self, mbox: i32) {
        self.with(|i| i.foreign.insert(mbox));
    }

    /// The connection vanishes (process killed): members see a disconnect.
    pub fn kill(&self, mbox: i32) {
        self.with(|i| i.gone(mbox));
    }

    /// Put a crafted message in front of a mailbox.
    pub fn inject(&self, mbox: i32, r: SpRecv) {
        self.with(|i| i.push(mbox, r));
    }

    /// Data frames sent so far.
    pub fn sent(&self) -> Vec<SentFrame> {
        self.with(|i| i.sent.clone())
    }

    /// Move a queued message of `mbox` from one queue position to another (to
    /// model a FIFO message overtaking agreed traffic).
    pub fn move_queued(&self, mbox: i32, from: usize, to: usize) {
        self.with(|i| {
            if let Some(b) = i.boxes.get_mut(&mbox) {
                if let Some(m) = b.queue.remove(from) {
                    b.queue.insert(to.min(b.queue.len()), m);
                }
            }
        })
    }

    /// A network change of `group`: each side of `sides` (mailboxes) becomes a
    /// partition; its members get a transitional message with the old view id,
    /// then a network membership listing their side only.
    pub fn partition(&self, group: &str, sides: &[&[i32]]) {
        self.with(|i| {
            let k = name(group);
            let old = match i.groups.get(&k) {
                Some(g) => [7, 1000 + g.era, g.index],
                None => return,
            };
            for (n, side) in sides.iter().enumerate() {
                for m in side.iter() {
                    i.part.insert(*m, n as u32 + 1);
                }
            }
            for side in sides {
                for m in side.iter() {
                    let body: Vec<u8> = old.iter().flat_map(|v| v.to_ne_bytes()).collect();
                    i.push(
                        *m,
                        SpRecv {
                            ret: 12,
                            service: TRANSITION_MESS as i32,
                            sender: k,
                            mess_type: -1,
                            body,
                            ..Default::default()
                        },
                    );
                }
            }
            for side in sides {
                i.network_view(&k, &[side.to_vec()]);
            }
        })
    }

    /// The partitions of `group` listed in `sides` merge again.
    pub fn merge(&self, group: &str, sides: &[&[i32]]) {
        self.with(|i| {
            let k = name(group);
            for side in sides {
                for m in side.iter() {
                    i.part.remove(m);
                }
            }
            let sets: Vec<Vec<i32>> = sides.iter().map(|s| s.to_vec()).collect();
            i.network_view(&k, &sets);
        })
    }

    pub fn pending(&self, mbox: i32) -> usize {
        self.with(|i| i.boxes.get(&mbox).map_or(0, |b| b.queue.len()))
    }
}

impl SpApi for Sim {
    fn version(&self) -> (i32, i32, i32) {
        (5, 0, 1)
    }

    fn connect(&self, _daemon: Option<&CStr>, user: Option<&CStr>, _priority: i32) -> (i32, i32, Name) {
        self.with(|i| {
            let user = user.map(|u| u.to_bytes().to_vec()).unwrap_or_default();
            let mut p = b"#".to_vec();
            p.extend_from_slice(&user[..user.len().min(10)]);
            p.extend_from_slice(b"#sim");
            let private = name_key(&p);
            if i.boxes.values().any(|b| b.private == private) {
                return (REJECT_NOT_UNIQUE, -1, [0; 32]);
            }
            i.next_mbox += 1;
            let mbox = 100 + i.next_mbox;
            i.boxes.insert(mbox, SimBox { private, queue: VecDeque::new() });
            (ACCEPT_SESSION, mbox, private)
        })
    }

    fn disconnect(&self, mbox: i32) -> i32 {
        self.with(|i| {
            if !i.boxes.contains_key(&mbox) {
                return ILLEGAL_SESSION;
            }
            i.gone(mbox);
            0
        })
    }

    fn join(&self, mbox: i32, group: &[u8]) -> i32 {
        if group.is_empty() || group.len() >= 32 || group.iter().any(|&c| !(36..=126).contains(&c)) {
            return ILLEGAL_GROUP;
        }
        self.with(|i| {
            if !i.boxes.contains_key(&mbox) {
                return ILLEGAL_SESSION;
            }
            let k = name_key(group);
            let mut members = i.groups.get(&k).map(|g| g.members.clone()).unwrap_or_default();
            if members.contains(&mbox) {
                return 0;
            }
            members.push(mbox);
            i.sort(&mut members);
            let who = i.private_of(mbox);
            if !i.groups.contains_key(&k) {
                let era = i.eras;
                i.eras += 1;
                i.groups.insert(k, Grp { era, ..Grp::default() });
            }
            i.groups.entry(k).or_default().members = members;
            i.announce(&k, CAUSED_BY_JOIN, &who);
            0
        })
    }

    fn leave(&self, mbox: i32, group: &[u8]) -> i32 {
        if group.is_empty() || group.len() >= 32 {
            return ILLEGAL_GROUP;
        }
        self.with(|i| {
            if !i.boxes.contains_key(&mbox) {
                return ILLEGAL_SESSION;
            }
            i.remove_member(mbox, &name_key(group), CAUSED_BY_LEAVE);
            0
        })
    }

    fn multicast(&self, mbox: i32, service: i32, group: &Name, mess_type: i16, parts: &[&[u8]]) -> i32 {
        let g = name_key(&group[..31]);
        self.with(|i| i.cast(mbox, service, &[g], mess_type, parts))
    }

    fn multigroup_multicast(&self, mbox: i32, service: i32, groups: &[Name], mess_type: i16, parts: &[&[u8]]) -> i32 {
        self.with(|i| i.cast(mbox, service, groups, mess_type, parts))
    }

    fn receive(&self, mbox: i32, max_groups: usize, body_cap: usize) -> SpRecv {
        self.with(|i| {
            let Some(b) = i.boxes.get_mut(&mbox) else {
                return SpRecv { ret: ILLEGAL_SESSION, ..Default::default() };
            };
            let Some(front) = b.queue.front() else {
                // The tests never block on an empty mailbox.
                return SpRecv { ret: CONNECTION_CLOSED, ..Default::default() };
            };
            let gs = front.groups.len() > max_groups;
            let bs = front.body.len() > body_cap;
            if gs || bs {
                let data = front.service & (REGULAR_MESS | REJECT_MESS) as i32 != 0;
                return SpRecv {
                    ret: if gs { GROUPS_TOO_SHORT } else { BUFFER_TOO_SHORT },
                    service: front.service,
                    sender: front.sender,
                    num_groups: if gs { -(front.groups.len() as i32) } else { 0 },
                    groups: Vec::new(),
                    mess_type: if data { front.mess_type } else { 0 },
                    endian_mismatch: if bs { -(front.body.len() as i32) } else { 0 },
                    body: Vec::new(),
                };
            }
            b.queue.pop_front().expect("front exists")
        })
    }

    fn poll(&self, mbox: i32) -> i32 {
        self.with(|i| match i.boxes.get(&mbox) {
            None => ILLEGAL_SESSION,
            Some(b) => b.queue.iter().map(|r| 48 + 32 * r.groups.len() as i32 + r.body.len() as i32).sum(),
        })
    }
}
