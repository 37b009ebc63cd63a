//! The GROUPS state-exchange message (daemon spec §6.3, §6.4).
//!
//! After a membership change the leader of each synced set sends its group
//! state as one or more GROUPS messages. Message header: `type =
//! GROUPS_MESS|RELIABLE_MESS` (or `|AGREED_MESS` for the set's last message),
//! `private_group_name` = the sender daemon's name with bytes 28..31 replaced
//! by the synced-set size (u32), `num_groups` 0, `hint` = marker only.
//! The data, packed without alignment, in the message's byte order:
//! ```text
//! membership_id  Reg_memb_id                                 8
//! u8             flag: 1 in the set's first-built message, else 0
//! [flag == 1:    u32 synced-set size, size × i32 VIDs]
//! per group:     32 name | 12 group_id | u16 changed | u16 daemon count
//!   per daemon:  i32 VID | 8 membership id (the group's) | u16 member count | count × 32 names
//! ```

use super::{Error, MembershipId, Reader, Result};
use crate::consts::{AGREED_MESS, GROUPS_MESS, MAX_GROUP_NAME, RELIABLE_MESS};
use crate::endian::Order;
use crate::header::Header;
use crate::membership::GroupId;
use crate::names::{name32, Name32};

/// Offset of the synced-set size inside `private_group_name`.
pub const SYNCED_SET_SIZE_OFFSET: usize = MAX_GROUP_NAME - 4;

/// One daemon's members of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DaemonRecord {
    pub proc_id: i32,
    /// The C sender writes the *group's* `grp_id.memb_id` here (§6.4).
    pub memb_id: MembershipId,
    pub members: Vec<Name32>,
}

/// One group's record (possibly repeated in a later message with more daemons).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupRecord {
    pub name: Name32,
    pub group_id: GroupId,
    /// 0 or 1 as sent; receivers take any non-zero value as "changed" and do
    /// not byte-swap it.
    pub changed: u16,
    pub daemons: Vec<DaemonRecord>,
}

/// The data part of one GROUPS message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupsMessage {
    /// The regular configuration the state belongs to.
    pub memb_id: MembershipId,
    /// Present (flag byte 1) only in the first-built message of a set.
    pub synced_set: Option<Vec<i32>>,
    pub groups: Vec<GroupRecord>,
}

fn name_field(r: &mut Reader<'_>, what: &'static str) -> Result<Name32> {
    let mut n = [0u8; MAX_GROUP_NAME];
    n.copy_from_slice(r.take(what, MAX_GROUP_NAME)?);
    Ok(n)
}

fn names(r: &mut Reader<'_>, what: &'static str, n: usize) -> Result<Vec<Name32>> {
    // Length first, so a bogus count allocates nothing.
    let bytes = r.take(what, n * MAX_GROUP_NAME)?;
    Ok(bytes
        .chunks_exact(MAX_GROUP_NAME)
        .map(|c| {
            let mut a = [0u8; MAX_GROUP_NAME];
            a.copy_from_slice(c);
            a
        })
        .collect())
}

fn push_count16(what: &'static str, n: usize, order: Order, out: &mut Vec<u8>) -> Result<()> {
    let v = u16::try_from(n).map_err(|_| Error::TooLarge { what, len: n, max: u16::MAX as usize })?;
    order.push_u16(out, v);
    Ok(())
}

impl GroupsMessage {
    /// Decode the message data (`data_len` bytes after the message header), in
    /// the message's order. A flag byte other than 0 or 1 is an error (the C
    /// sender writes only those).
    pub fn decode(order: Order, data: &[u8]) -> Result<GroupsMessage> {
        let mut r = Reader::new(order, data);
        let memb_id = r.membership_id("GROUPS membership id")?;
        let synced_set = match r.u8("GROUPS flag")? {
            0 => None,
            1 => {
                let n = r.u32("synced set size")? as usize;
                Some(r.i32s("synced set", n)?)
            }
            x => return Err(Error::BadValue { what: "GROUPS flag", value: x as i64 }),
        };
        let mut groups = Vec::new();
        while r.remaining() > 0 {
            let name = name_field(&mut r, "group name")?;
            let group_id =
                GroupId { proc_id: r.i32("group id")?, time: r.i32("group id")?, index: r.i32("group id index")? };
            let changed = r.u16("group changed")?;
            let nd = r.u16("group daemon count")? as usize;
            let mut daemons = Vec::new();
            for _ in 0..nd {
                let proc_id = r.i32("daemon VID")?;
                let memb_id = r.membership_id("daemon membership id")?;
                let nm = r.u16("daemon member count")? as usize;
                daemons.push(DaemonRecord { proc_id, memb_id, members: names(&mut r, "member names", nm)? });
            }
            groups.push(GroupRecord { name, group_id, changed, daemons });
        }
        Ok(GroupsMessage { memb_id, synced_set, groups })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        super::atomic_append(out, |out| {
            self.memb_id.encode(order, out);
            match &self.synced_set {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    let n = u32::try_from(s.len()).map_err(|_| Error::TooLarge {
                        what: "synced set",
                        len: s.len(),
                        max: u32::MAX as usize,
                    })?;
                    order.push_u32(out, n);
                    s.iter().for_each(|&v| order.push_i32(out, v));
                }
            }
            for g in &self.groups {
                out.extend_from_slice(&g.name);
                g.group_id.encode_in(order, out);
                order.push_u16(out, g.changed);
                push_count16("daemon records", g.daemons.len(), order, out)?;
                for d in &g.daemons {
                    order.push_i32(out, d.proc_id);
                    d.memb_id.encode(order, out);
                    push_count16("members", d.members.len(), order, out)?;
                    d.members.iter().for_each(|m| out.extend_from_slice(m));
                }
            }
            Ok(())
        })
    }

    pub fn to_bytes(&self, order: Order) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.encode(order, &mut v)?;
        Ok(v)
    }
}

/// The message header of a GROUPS message (§6.4) in `order`: `last` selects
/// AGREED (the set's final message) over RELIABLE.
pub fn groups_message_header(
    daemon_name: &[u8],
    synced_set_size: u32,
    last: bool,
    data_len: i32,
    order: Order,
) -> Header {
    let mut sender = name32(daemon_name);
    let size = match order {
        Order::Little => synced_set_size.to_le_bytes(),
        Order::Big => synced_set_size.to_be_bytes(),
    };
    sender[SYNCED_SET_SIZE_OFFSET..].copy_from_slice(&size);
    let service = if last { AGREED_MESS } else { RELIABLE_MESS };
    Header {
        type_: GROUPS_MESS | service | order.marker(),
        sender,
        num_groups: 0,
        // `hint` holds raw bytes; the marker is a byte palindrome.
        hint: order.marker(),
        data_len,
    }
}

/// The synced-set size a GROUPS message header carries in name bytes 28..31,
/// read in the message's order.
pub fn synced_set_size(header: &Header, order: Order) -> u32 {
    order.read_u32(&header.sender[SYNCED_SET_SIZE_OFFSET..])
}

/// The sender daemon's name: the NUL-terminated string at the start of
/// `private_group_name` (at most 20 bytes, never reaching byte 28).
pub fn sender_name(header: &Header) -> &[u8] {
    crate::names::name_bytes(&header.sender[..SYNCED_SET_SIZE_OFFSET])
}
