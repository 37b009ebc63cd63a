//! Status replies (daemon spec §8.4) as `spmonitor` prints them.
//!
//! The original reads every datagram that reaches its socket into one fixed
//! header buffer and one status record that live for the whole run, so a
//! short datagram only overwrites a prefix of what the previous one left
//! there; the record is then byte-swapped if the header's marker is not this
//! host's. The "Delta" line compares with whatever record was held before
//! this datagram, whichever daemon it came from. [`Reports`] keeps the same
//! two buffers and so prints the same thing for the same datagrams.

use spread_wire::daemon::{Status, PACKET_HEADER_LEN};
use spread_wire::{Order, ENDIAN_RESERVED};

use crate::config::Config;

/// Bytes of the status record after the header.
pub const STATUS_LEN: usize = spread_wire::daemon::control::STATUS_LEN;
/// Longest datagram the monitor reads; the rest of a longer one is dropped.
pub const REPORT_LEN: usize = PACKET_HEADER_LEN + STATUS_LEN;

/// The monitor's receive buffers.
#[derive(Clone, Debug)]
pub struct Reports {
    header: [u8; PACKET_HEADER_LEN],
    status: Status,
}

impl Default for Reports {
    fn default() -> Self {
        Reports { header: [0; PACKET_HEADER_LEN], status: Status::default() }
    }
}

/// The order a header's `type` word says its sender wrote in, as the
/// original decides it: the marker bits equal to this host's mean "same
/// order"; anything else means "swap".
fn sender_order(type_word: [u8; 4]) -> Order {
    let t = Order::NATIVE.read_u32(&type_word);
    if t & ENDIAN_RESERVED == Order::NATIVE.marker() {
        Order::NATIVE
    } else {
        match Order::NATIVE {
            Order::Little => Order::Big,
            Order::Big => Order::Little,
        }
    }
}

impl Reports {
    /// The status record held now.
    pub fn current(&self) -> &Status {
        &self.status
    }

    /// Take in one received datagram (`data` non-empty, at most
    /// [`REPORT_LEN`] bytes are used) and return the text to print for it.
    pub fn receive(&mut self, conf: &Config, data: &[u8]) -> Vec<u8> {
        let data = &data[..data.len().min(REPORT_LEN)];
        let last = self.status;
        let n = data.len().min(PACKET_HEADER_LEN);
        self.header[..n].copy_from_slice(&data[..n]);
        let mut raw = Vec::with_capacity(STATUS_LEN);
        last.encode(Order::NATIVE, &mut raw);
        let body = &data[n..];
        raw[..body.len()].copy_from_slice(body);
        let order = sender_order([self.header[0], self.header[1], self.header[2], self.header[3]]);
        // `raw` is exactly STATUS_LEN bytes.
        self.status = Status::decode(order, &raw).unwrap_or(last);
        format_status(conf, &self.status, &last)
    }
}

/// The printout for status record `s` when the record held before was `last`.
pub fn format_status(conf: &Config, s: &Status, last: &Status) -> Vec<u8> {
    let mut o: Vec<u8> = Vec::with_capacity(1024);
    o.extend_from_slice(b"\n============================\n");
    let Some(me) = conf.daemon_by_vid(s.my_id as u32) else {
        o.extend_from_slice(b"Report_message: Skiping illegal status \n");
        o.extend_from_slice(b"==================================\n");
        return o;
    };
    o.extend_from_slice(b"Status at ");
    o.extend_from_slice(&me.name_bytes);
    o.extend_from_slice(
        format!(
            " V{:2}.{:02}.{:2} (state {}, gstate {}) after {} seconds :\n",
            s.major_version, s.minor_version, s.patch_version, s.state, s.gstate, s.sec
        )
        .as_bytes(),
    );
    o.extend_from_slice(
        format!("Membership  :  {}  procs in {} segments, leader is ", s.num_procs, s.num_segments).as_bytes(),
    );
    match conf.daemon_by_vid(s.leader_id as u32) {
        Some(l) => o.extend_from_slice(&l.name_bytes),
        None => o.extend_from_slice(s.leader_id.to_string().as_bytes()),
    }
    o.extend_from_slice(if s.accelerated_ring == 0 { b", regular protocol\n" } else { b", accelerated protocol\n" });
    let rows = [
        format!(
            "rounds   : {:7}\ttok_hurry : {:7}\tmemb change: {:7}\n",
            s.token_rounds, s.token_hurry, s.membership_changes
        ),
        format!("sent pack: {:7}\trecv pack : {:7}\tretrans    : {:7}\n", s.packet_sent, s.packet_recv, s.retrans),
        format!("u retrans: {:7}\ts retrans : {:7}\tb retrans  : {:7}\n", s.u_retrans, s.s_retrans, s.b_retrans),
        format!("My_aru   : {:7}\tAru       : {:7}\tHighest seq: {:7}\n", s.my_aru, s.aru, s.highest_seq),
        format!("Sessions : {:7}\tGroups    : {:7}\tWindow     : {:7}\n", s.num_sessions, s.num_groups, s.window),
        format!(
            "Deliver M: {:7}\tDeliver Pk: {:7}\tP/A Window : {:7}/{}\n",
            s.message_delivered, s.packet_delivered, s.personal_window, s.accelerated_window
        ),
        format!(
            "Delta Mes: {:7}\tDelta Pk  : {:7}\tDelta sec  : {:7}\n",
            s.message_delivered.wrapping_sub(last.message_delivered),
            s.aru.wrapping_sub(last.aru),
            s.sec.wrapping_sub(last.sec)
        ),
    ];
    for r in rows {
        o.extend_from_slice(r.as_bytes());
    }
    o.extend_from_slice(b"==================================\n\nMonitor> ");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::daemon::{ControlBody, ControlPacket, PacketHeader, STATUS_TYPE};

    fn conf() -> Config {
        crate::config::parse_str_with_resolver(
            "Spread_Segment 127.0.0.255:4803 {\n da 127.0.0.1\n db 127.0.0.2\n}\n",
            "t.conf",
            &crate::config::offline_resolver,
        )
        .unwrap()
    }

    fn sample(c: &Config) -> Status {
        Status {
            sec: 5,
            state: 1,
            gstate: 1,
            packet_sent: 3,
            packet_recv: 4,
            packet_delivered: 7,
            retrans: 1,
            u_retrans: 2,
            s_retrans: 0,
            b_retrans: 9,
            aru: 12,
            my_aru: 11,
            highest_seq: 13,
            token_hurry: 8,
            token_rounds: 14,
            my_id: c.daemons[0].vid as i32,
            leader_id: c.daemons[1].vid as i32,
            message_delivered: 6,
            membership_changes: 1,
            num_procs: 2,
            num_segments: 1,
            window: 160,
            personal_window: 20,
            accelerated_ring: 0,
            accelerated_window: 15,
            num_sessions: 2,
            num_groups: 3,
            major_version: 5,
            minor_version: 0,
            patch_version: 1,
        }
    }

    const EXPECTED: &str = "\n============================\n\
Status at da V 5.00. 1 (state 1, gstate 1) after 5 seconds :\n\
Membership  :  2  procs in 1 segments, leader is db, regular protocol\n\
rounds   :      14\ttok_hurry :       8\tmemb change:       1\n\
sent pack:       3\trecv pack :       4\tretrans    :       1\n\
u retrans:       2\ts retrans :       0\tb retrans  :       9\n\
My_aru   :      11\tAru       :      12\tHighest seq:      13\n\
Sessions :       2\tGroups    :       3\tWindow     :     160\n\
Deliver M:       6\tDeliver Pk:       7\tP/A Window :      20/15\n\
Delta Mes:       6\tDelta Pk  :      12\tDelta sec  :       5\n\
==================================\n\nMonitor> ";

    #[test]
    fn printout_matches_the_original_format() {
        let c = conf();
        let s = sample(&c);
        let text = String::from_utf8(format_status(&c, &s, &Status::default())).unwrap();
        assert_eq!(text, EXPECTED);
    }

    #[test]
    fn unknown_leader_is_printed_as_a_number_and_accelerated_is_named() {
        let c = conf();
        let mut s = sample(&c);
        s.leader_id = 42;
        s.accelerated_ring = 1;
        let text = String::from_utf8(format_status(&c, &s, &s)).unwrap();
        assert!(text.contains("leader is 42, accelerated protocol\n"), "{text}");
        assert!(text.contains("Delta Mes:       0\tDelta Pk  :       0\tDelta sec  :       0\n"), "{text}");
    }

    #[test]
    fn unknown_responder_is_skipped() {
        let c = conf();
        let mut s = sample(&c);
        s.my_id = 7;
        let text = String::from_utf8(format_status(&c, &s, &Status::default())).unwrap();
        assert_eq!(
            text,
            "\n============================\nReport_message: Skiping illegal status \n==================================\n"
        );
    }

    fn reply(order: Order, s: &Status) -> Vec<u8> {
        let pkt = ControlPacket {
            header: PacketHeader { type_: STATUS_TYPE, proc_id: s.my_id, ..PacketHeader::default() },
            body: ControlBody::StatusReply(*s),
        };
        let mut b = Vec::new();
        pkt.encode(order, &mut b).unwrap();
        b
    }

    #[test]
    fn replies_of_either_byte_order_and_deltas_against_the_previous_one() {
        let c = conf();
        let s = sample(&c);
        let mut r = Reports::default();
        let first = r.receive(&c, &reply(Order::Big, &s));
        assert_eq!(String::from_utf8(first).unwrap(), EXPECTED);
        let mut s2 = s;
        s2.sec = 15;
        s2.message_delivered = 16;
        s2.aru = 20;
        let second = String::from_utf8(r.receive(&c, &reply(Order::Little, &s2))).unwrap();
        assert!(second.contains("Delta Mes:      10\tDelta Pk  :       8\tDelta sec  :      10\n"), "{second}");
        assert_eq!(r.current(), &s2);
    }

    #[test]
    fn a_short_datagram_overwrites_only_a_prefix() {
        let c = conf();
        let s = sample(&c);
        let mut r = Reports::default();
        r.receive(&c, &reply(Order::NATIVE, &s));
        let mut s2 = s;
        s2.sec = 99;
        let full = reply(Order::NATIVE, &s2);
        // header and the first field only: everything else stays as it was
        r.receive(&c, &full[..44]);
        assert_eq!(r.current(), &s2);
        let mut s3 = s;
        s3.sec = 100;
        s3.window = 1;
        // longer than a status reply: the tail is ignored
        let mut long = reply(Order::NATIVE, &s3);
        long.extend_from_slice(&[0xff; 20]);
        r.receive(&c, &long);
        assert_eq!(r.current(), &s3);
    }
}
