//! Every daemon⇄daemon decoder of spread-wire on the same bytes: the
//! datagram classifiers (`Datagram`, `Packet`, `Token`), both 40-byte headers,
//! a message as carried in fragments, the GROUPS state-exchange body and the
//! status reply, in both byte orders. What decodes is pushed one layer
//! further (the messages inside a data packet's fragments, a GROUPS body
//! inside a message).
//!
//! The module promises (spread-wire/src/daemon/mod.rs): decoders never panic;
//! decoding is strict, so whatever decodes re-encodes, to a datagram of the
//! same length, which decodes to the same value; values carry no byte order,
//! so encoding in the other order decodes to the same value too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::consts::GROUPS_MESS;
use spread_wire::daemon::{Datagram, GroupsMessage, Message, Packet, PacketHeader, Status, Token, TokenHeader};
use spread_wire::Order;

fn check_message(b: &[u8]) {
    let Ok(m) = Message::decode(b) else { return };
    let again = m.to_bytes().expect("a decoded message encodes");
    assert_eq!(again.len(), b.len(), "message re-encoded to another length");
    assert_eq!(Message::decode(&again).expect("a re-encoded message decodes"), m);
    if m.header.type_ & GROUPS_MESS != 0 {
        check_groups(m.order, &m.data);
    }
}

fn check_groups(o: Order, b: &[u8]) {
    let Ok(g) = GroupsMessage::decode(o, b) else { return };
    let again = g.to_bytes(o).expect("a decoded GROUPS body encodes");
    assert_eq!(again.len(), b.len(), "GROUPS body re-encoded to another length");
    assert_eq!(GroupsMessage::decode(o, &again).expect("a re-encoded GROUPS body decodes"), g);
    let flipped = g.to_bytes(o.flipped()).expect("a decoded GROUPS body encodes in the other order");
    assert_eq!(GroupsMessage::decode(o.flipped(), &flipped).expect("the other order decodes"), g);
}

fuzz_target!(|b: &[u8]| {
    if let Ok((o, d)) = Datagram::decode(b) {
        let again = d.to_bytes(o).expect("a decoded datagram encodes");
        assert_eq!(again.len(), b.len(), "datagram re-encoded to another length");
        assert_eq!(Datagram::decode(&again).expect("a re-encoded datagram decodes"), (o, d.clone()));
        let flipped = d.to_bytes(o.flipped()).expect("a decoded datagram encodes in the other order");
        assert_eq!(Datagram::decode(&flipped).expect("the other order decodes"), (o.flipped(), d.clone()));
        if let Datagram::Packet(Packet::Data(p)) = &d {
            for f in &p.fragments {
                if f.index == -1 {
                    check_message(&f.data);
                }
                let _ = f.message_header();
            }
            let _ = p.follows_packing_rule();
        }
    }
    if let Ok((o, p)) = Packet::decode(b) {
        let mut v = Vec::new();
        p.encode(o, &mut v).expect("a decoded packet encodes");
        assert_eq!(Packet::decode(&v).expect("a re-encoded packet decodes"), (o, p));
    }
    if let Ok((o, t)) = Token::decode(b) {
        let mut v = Vec::new();
        t.encode(o, &mut v).expect("a decoded token encodes");
        assert_eq!(Token::decode(&v).expect("a re-encoded token decodes"), (o, t));
    }
    if let Ok((o, h)) = PacketHeader::decode(b) {
        let mut v = Vec::new();
        h.encode(o, &mut v);
        assert_eq!(PacketHeader::decode(&v).expect("a re-encoded packet header decodes"), (o, h));
        let _ = h.kind();
    }
    if let Ok((o, h)) = TokenHeader::decode(b) {
        let mut v = Vec::new();
        h.encode(o, &mut v);
        assert_eq!(TokenHeader::decode(&v).expect("a re-encoded token header decodes"), (o, h));
    }
    check_message(b);
    for o in [Order::Little, Order::Big] {
        check_groups(o, b);
        if let Ok(s) = Status::decode(o, b) {
            let mut v = Vec::new();
            s.encode(o, &mut v);
            assert_eq!(Status::decode(o, &v).expect("a re-encoded status decodes"), s);
        }
    }
});
