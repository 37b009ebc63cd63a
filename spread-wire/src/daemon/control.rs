//! Monitor/control packets (daemon spec §8.1, §8.2, §8.4).
//!
//! A control packet is a packet header whose `type` has one of the
//! `CONTROL_TYPE` bits, plus a payload:
//!
//! | kind | payload |
//! |---|---|
//! | STATUS query (spmonitor → daemon) | none; `seq` holds the monitor's reply port |
//! | STATUS reply (daemon → spmonitor) | the 96-byte [`Status`] |
//! | PARTITION | `i16 partition[128]`, by proc index |
//! | FC (flow control) | `i16 fc[128][2]` |
//! | RELOAD | none |

use super::{encode_packet, ControlKind, Error, PacketHeader, Reader, Result};
use crate::endian::Order;

/// Bytes of a status reply payload.
pub const STATUS_LEN: usize = 96;

/// The status reply payload (`status.h:status`), in the responder's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Status {
    /// Seconds since the daemon started.
    pub sec: i32,
    /// Membership state (OP 1 … EVS 6).
    pub state: i32,
    /// Groups state (GOP 1 … GGT 4).
    pub gstate: i32,
    pub packet_sent: i32,
    pub packet_recv: i32,
    pub packet_delivered: i32,
    pub retrans: i32,
    pub u_retrans: i32,
    pub s_retrans: i32,
    pub b_retrans: i32,
    pub aru: i32,
    pub my_aru: i32,
    pub highest_seq: i32,
    pub token_hurry: i32,
    pub token_rounds: i32,
    pub my_id: i32,
    pub leader_id: i32,
    pub message_delivered: i32,
    pub membership_changes: i16,
    pub num_procs: i16,
    pub num_segments: i16,
    pub window: i16,
    pub personal_window: i16,
    pub accelerated_ring: i16,
    pub accelerated_window: i16,
    pub num_sessions: i16,
    pub num_groups: i16,
    pub major_version: i16,
    pub minor_version: i16,
    pub patch_version: i16,
}

impl Status {
    pub fn decode(order: Order, b: &[u8]) -> Result<Status> {
        let mut r = Reader::new(order, b);
        let s = Status {
            sec: r.i32("sec")?,
            state: r.i32("state")?,
            gstate: r.i32("gstate")?,
            packet_sent: r.i32("packet_sent")?,
            packet_recv: r.i32("packet_recv")?,
            packet_delivered: r.i32("packet_delivered")?,
            retrans: r.i32("retrans")?,
            u_retrans: r.i32("u_retrans")?,
            s_retrans: r.i32("s_retrans")?,
            b_retrans: r.i32("b_retrans")?,
            aru: r.i32("aru")?,
            my_aru: r.i32("my_aru")?,
            highest_seq: r.i32("highest_seq")?,
            token_hurry: r.i32("token_hurry")?,
            token_rounds: r.i32("token_rounds")?,
            my_id: r.i32("my_id")?,
            leader_id: r.i32("leader_id")?,
            message_delivered: r.i32("message_delivered")?,
            membership_changes: r.i16("membership_changes")?,
            num_procs: r.i16("num_procs")?,
            num_segments: r.i16("num_segments")?,
            window: r.i16("window")?,
            personal_window: r.i16("personal_window")?,
            accelerated_ring: r.i16("accelerated_ring")?,
            accelerated_window: r.i16("accelerated_window")?,
            num_sessions: r.i16("num_sessions")?,
            num_groups: r.i16("num_groups")?,
            major_version: r.i16("major_version")?,
            minor_version: r.i16("minor_version")?,
            patch_version: r.i16("patch_version")?,
        };
        r.finish("status payload")?;
        Ok(s)
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) {
        for v in [
            self.sec,
            self.state,
            self.gstate,
            self.packet_sent,
            self.packet_recv,
            self.packet_delivered,
            self.retrans,
            self.u_retrans,
            self.s_retrans,
            self.b_retrans,
            self.aru,
            self.my_aru,
            self.highest_seq,
            self.token_hurry,
            self.token_rounds,
            self.my_id,
            self.leader_id,
            self.message_delivered,
        ] {
            order.push_i32(out, v);
        }
        for v in [
            self.membership_changes,
            self.num_procs,
            self.num_segments,
            self.window,
            self.personal_window,
            self.accelerated_ring,
            self.accelerated_window,
            self.num_sessions,
            self.num_groups,
            self.major_version,
            self.minor_version,
            self.patch_version,
        ] {
            order.push_i16(out, v);
        }
    }
}

/// The payload of a control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlBody {
    /// STATUS with no payload.
    StatusQuery,
    /// STATUS with the 96-byte payload.
    StatusReply(Status),
    /// One i16 per proc index (spmonitor sends all 128); −1 = "exit".
    Partition(Vec<i16>),
    /// `[window, personal/accelerated]` pairs per proc index (spmonitor sends 128).
    FlowControl(Vec<[i16; 2]>),
    Reload,
}

/// A monitor/control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    pub header: PacketHeader,
    pub body: ControlBody,
}

impl ControlPacket {
    /// Decode the payload of a control packet of kind `kind`: STATUS must be 0
    /// or 96 bytes, PARTITION a whole number of i16, FC of i16 pairs, RELOAD empty.
    pub fn decode_body(order: Order, header: PacketHeader, kind: ControlKind, body: &[u8]) -> Result<ControlPacket> {
        let body = match kind {
            ControlKind::Status if body.is_empty() => ControlBody::StatusQuery,
            ControlKind::Status if body.len() == STATUS_LEN => ControlBody::StatusReply(Status::decode(order, body)?),
            ControlKind::Status => {
                return Err(Error::LengthMismatch { what: "status payload", declared: STATUS_LEN, actual: body.len() })
            }
            ControlKind::Partition => {
                let cells = body.chunks_exact(2);
                if !cells.remainder().is_empty() {
                    return Err(Error::BadValue { what: "partition payload length", value: body.len() as i64 });
                }
                ControlBody::Partition(cells.map(|c| order.read_i16(c)).collect())
            }
            ControlKind::FlowControl => {
                let cells = body.chunks_exact(4);
                if !cells.remainder().is_empty() {
                    return Err(Error::BadValue { what: "flow-control payload length", value: body.len() as i64 });
                }
                ControlBody::FlowControl(cells.map(|c| [order.read_i16(&c[0..2]), order.read_i16(&c[2..4])]).collect())
            }
            ControlKind::Reload => {
                super::expect_empty("reload payload", body)?;
                ControlBody::Reload
            }
        };
        Ok(ControlPacket { header, body })
    }

    pub fn encode(&self, order: Order, out: &mut Vec<u8>) -> Result<()> {
        let mut body = Vec::new();
        match &self.body {
            ControlBody::StatusQuery | ControlBody::Reload => {}
            ControlBody::StatusReply(s) => s.encode(order, &mut body),
            ControlBody::Partition(p) => p.iter().for_each(|&v| order.push_i16(&mut body, v)),
            ControlBody::FlowControl(f) => f.iter().flatten().for_each(|&v| order.push_i16(&mut body, v)),
        }
        encode_packet(&self.header, None, &body, order, out)
    }
}
