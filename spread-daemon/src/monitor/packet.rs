//! The control packets `spmonitor` sends (daemon spec §8.1, §8.2).
//!
//! Every one is a 40-byte packet header in this host's byte order, with the
//! control bit of its kind and the endian marker in `type`, the monitor's
//! identity (the VID of the configured daemon it runs as) in both
//! `transmiter_id` and `proc_id`, the monitor's port in `seq` (where status
//! replies go), the configuration hash in `conf_hash` and the payload length in
//! `data_len`; every other header field is 0. The payloads are whole tables of
//! `MAX_PROCS_RING` entries, as the original sends them: 256 bytes for a
//! partition, 512 for flow control, nothing for a status query or a reload.

use spread_wire::daemon::{ControlBody, ControlPacket, PacketHeader, MAX_PROCS_RING};
use spread_wire::daemon::{FC_TYPE, PARTITION_TYPE, RELOAD_TYPE, STATUS_TYPE};
use spread_wire::Order;

/// A partition table: one partition number per proc index; −1 = "exit".
pub type PartitionTable = [i16; MAX_PROCS_RING];
/// A flow-control table: `[personal window, accelerated window]` per proc
/// index; the entry at index `num_procs` holds the ring window in `[0]`.
pub type FcTable = [[i16; 2]; MAX_PROCS_RING];

/// Who the monitor is on the wire: the fields every packet it sends shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    /// VID of the configured daemon the monitor runs as.
    pub vid: u32,
    /// The monitor's own UDP port (`-p`), carried in `seq`.
    pub port: u16,
    /// The configuration hash the daemons compare with their own.
    pub conf_hash: u32,
}

impl Sender {
    fn header(&self, type_: u32) -> PacketHeader {
        PacketHeader {
            type_,
            transmiter_id: self.vid as i32,
            proc_id: self.vid as i32,
            seq: i32::from(self.port),
            conf_hash: self.conf_hash,
            ..PacketHeader::default()
        }
    }

    fn build(&self, type_: u32, body: ControlBody) -> Vec<u8> {
        let pkt = ControlPacket { header: self.header(type_), body };
        let mut out = Vec::with_capacity(40 + 512);
        // The largest payload (512 bytes) is far below the packet body limit.
        pkt.encode(Order::NATIVE, &mut out).expect("control payload within the packet size");
        out
    }

    /// A status query (no payload; the reply goes to `<my address>:seq`).
    pub fn status_query(&self) -> Vec<u8> {
        self.build(STATUS_TYPE, ControlBody::StatusQuery)
    }

    /// A partition packet carrying the whole table (256 bytes).
    pub fn partition(&self, table: &PartitionTable) -> Vec<u8> {
        self.build(PARTITION_TYPE, ControlBody::Partition(table.to_vec()))
    }

    /// A flow-control packet carrying the whole table (512 bytes).
    pub fn flow_control(&self, table: &FcTable) -> Vec<u8> {
        self.build(FC_TYPE, ControlBody::FlowControl(table.to_vec()))
    }

    /// A reload command (no payload).
    pub fn reload(&self) -> Vec<u8> {
        self.build(RELOAD_TYPE, ControlBody::Reload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::daemon::{Packet, PACKET_HEADER_LEN};

    const S: Sender = Sender { vid: 0x7f00_0001, port: 28150, conf_hash: 0xdead_beef };

    fn u32_at(b: &[u8], off: usize) -> u32 {
        Order::NATIVE.read_u32(&b[off..off + 4])
    }

    fn check_header(b: &[u8], type_bit: u32, payload: usize) {
        assert_eq!(b.len(), PACKET_HEADER_LEN + payload);
        let marker = if cfg!(target_endian = "little") { 0x8000_0080 } else { 0 };
        assert_eq!(u32_at(b, 0), type_bit | marker, "type word with the endian marker");
        assert_eq!(u32_at(b, 4), S.vid, "transmiter_id");
        assert_eq!(u32_at(b, 8), S.vid, "proc_id");
        assert_eq!(u32_at(b, 12), 0, "memb_id.proc_id");
        assert_eq!(u32_at(b, 16), 0, "memb_id.time");
        assert_eq!(u32_at(b, 20), 28150, "seq = monitor port");
        assert_eq!(u32_at(b, 24), 0, "token_round");
        assert_eq!(u32_at(b, 28), 0xdead_beef, "conf_hash");
        assert_eq!(Order::NATIVE.read_u16(&b[32..34]) as usize, payload, "data_len");
        assert_eq!(&b[34..40], &[0u8; 6], "padding and first fragment header");
    }

    #[test]
    fn status_query_is_a_bare_header() {
        let b = S.status_query();
        check_header(&b, STATUS_TYPE, 0);
        // on a little-endian host the marker bytes are 0x80 .. 0x80
        if cfg!(target_endian = "little") {
            assert_eq!(&b[0..4], &[0x80, 0, 0, 0x81]);
        }
    }

    #[test]
    fn reload_is_a_bare_header() {
        check_header(&S.reload(), RELOAD_TYPE, 0);
    }

    #[test]
    fn partition_carries_256_bytes_by_proc_index() {
        let mut t = [0i16; MAX_PROCS_RING];
        t[0] = 1;
        t[1] = -1;
        t[127] = 300;
        let b = S.partition(&t);
        check_header(&b, PARTITION_TYPE, 256);
        assert_eq!(Order::NATIVE.read_i16(&b[40..42]), 1);
        assert_eq!(Order::NATIVE.read_i16(&b[42..44]), -1);
        assert_eq!(Order::NATIVE.read_i16(&b[40 + 254..40 + 256]), 300);
        assert!(b[44..40 + 254].iter().all(|&x| x == 0));
        // and the wire decoder reads it back as the daemon will
        let (_, p) = Packet::decode(&b).unwrap();
        let Packet::Control(c) = p else { panic!("not a control packet") };
        assert_eq!(c.body, ControlBody::Partition(t.to_vec()));
    }

    #[test]
    fn flow_control_carries_512_bytes_in_pairs() {
        let mut t = [[0i16; 2]; MAX_PROCS_RING];
        t[0] = [20, 15];
        t[2] = [160, -1];
        let b = S.flow_control(&t);
        check_header(&b, FC_TYPE, 512);
        assert_eq!(Order::NATIVE.read_i16(&b[40..42]), 20);
        assert_eq!(Order::NATIVE.read_i16(&b[42..44]), 15);
        assert_eq!(Order::NATIVE.read_i16(&b[48..50]), 160);
        assert_eq!(Order::NATIVE.read_i16(&b[50..52]), -1);
        let (_, p) = Packet::decode(&b).unwrap();
        let Packet::Control(c) = p else { panic!("not a control packet") };
        assert_eq!(c.body, ControlBody::FlowControl(t.to_vec()));
        assert_eq!(c.header.seq, 28150);
    }
}
