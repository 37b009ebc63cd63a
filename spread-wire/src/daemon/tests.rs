//! Unit tests of the daemon packet codecs: captured vectors, both byte orders,
//! and truncated / garbage input.

use super::data::split_message;
use super::groups::{groups_message_header, sender_name, synced_set_size};
use super::token::TokenKind;
use super::*;
use crate::consts::{AGREED_MESS, GROUPS_MESS, JOIN_MESS, KILL_MESS, SAFE_MESS};
use crate::header::Header;
use crate::membership::GroupId;
use crate::names::{name32, name_bytes};

const D1: i32 = 0x5c8d7aef;
const D2: i32 = 0x14c565a0;
const D3: i32 = 0xef46226e_u32 as i32;
const HASH: u32 = 0xb5fb199e;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn decode_le(b: &[u8]) -> Datagram {
    let (o, d) = Datagram::decode(b).unwrap();
    assert_eq!(o, Order::Little);
    d
}

// ---- vectors from ../shared/ref/pcap (README and *.decoded.txt) -------------

#[test]
fn alive_from_d2() {
    // i_ring_formation #1.
    let raw = hex("80010080 a065c514 a065c514 00000000 00000000 00000000 00000000 9e19fbb5 08000000 00000000
                   01000000 a065c514");
    let Datagram::Packet(Packet::Alive(a)) = decode_le(&raw) else { panic!("not ALIVE") };
    assert_eq!(a.header.type_, ALIVE_TYPE);
    assert_eq!((a.header.transmiter_id, a.header.proc_id, a.header.conf_hash), (D2, D2, HASH));
    assert_eq!(a.header.data_len, 8);
    assert_eq!((a.members.as_slice(), a.num_pending), (&[D2][..], 0));
    assert_eq!(Datagram::Packet(Packet::Alive(a)).to_bytes(Order::Little).unwrap(), raw);
}

#[test]
fn join_from_d1() {
    // i_ring_formation #7: members [d1, d3, d2], reps [(d1, SEG_REP, 0)].
    let raw = hex("80020080ef7a8d5cef7a8d5c000000000000000000000000000000009e19fbb51c0000000000000003000000
                   ef7a8d5c6e2246efa065c51401000000ef7a8d5c01000000");
    let Datagram::Packet(Packet::Join(j)) = decode_le(&raw) else { panic!("not JOIN") };
    assert_eq!(j.members, vec![D1, D3, D2]);
    assert_eq!(j.num_pending, 0);
    assert_eq!(j.reps.rep_index, 0);
    assert_eq!(j.reps.reps, vec![RepInfo { proc_id: D1, rep_type: RepType::Seg, seg_index: 0 }]);
    assert_eq!(Datagram::Packet(Packet::Join(j)).to_bytes(Order::Little).unwrap(), raw);
}

#[test]
fn hurry_from_d2() {
    // v_client_join_leave #13.
    let raw = hex("c0000080 a065c514 a065c514 00000000 00000000 00000000 00000000 9e19fbb5 00000000 00000000");
    let Datagram::Packet(Packet::Hurry(h)) = decode_le(&raw) else { panic!("not HURRY") };
    assert_eq!(h.type_, HURRY_TYPE);
    assert_eq!(h.proc_id, D2);
    assert_eq!(h.kind(), Some(PacketKind::Hurry));
    assert_eq!(Datagram::Packet(Packet::Hurry(h)).to_bytes(Order::Little).unwrap(), raw);
}

#[test]
fn first_regular_token_and_hurry_copy() {
    // i_ring_formation #32 and iii_daemon_killed #14.
    let raw = hex("80000080 6e2246ef 6e2246ef ef7a8d5c a4fe026b 00000000 ffffff7f ffffffff 00000000 9e19fbb5");
    let Datagram::Token(Token::Regular(t)) = decode_le(&raw) else { panic!("not a regular token") };
    assert_eq!(t.header.memb_id, MembershipId { proc_id: D1, time: 0x6b02fea4 });
    assert_eq!((t.header.seq, t.header.aru, t.header.aru_last_id), (0, i32::MAX, -1));
    assert_eq!((t.header.arq(), t.header.retrans()), (0, 0));
    assert!(t.requests.is_empty());
    assert_eq!(Datagram::Token(Token::Regular(t)).to_bytes(Order::Little).unwrap(), raw);

    let raw = hex("80002380 ef7a8d5c ef7a8d5c ef7a8d5c a4fe026b b1020000 b1020000 ef7a8d5c 00000000 9e19fbb5");
    let Datagram::Token(Token::Regular(t)) = decode_le(&raw) else { panic!("not a regular token") };
    assert_eq!((t.header.arq(), t.header.retrans(), t.header.seq, t.header.aru), (3, 2, 689, 689));
    let mut h = t.header;
    h.set_arq(0x13);
    h.set_retrans(1);
    assert_eq!((h.arq(), h.retrans(), h.type_), (3, 1, 0x0013_0000));
}

#[test]
fn groups_message_from_d1() {
    // i_ring_formation #40: AGREED packet, one GROUPS message, synced set {d1}.
    let raw = hex("88000080ef7a8d5cef7a8d5cef7a8d5ca4fe026b01000000020000009e19fbb541000000ffff4100
                   900008806431000000000000000000000000000000000000000000000000000001000000000000008000008011000000
                   ef7a8d5ca4fe026b0101000000ef7a8d5c");
    let Datagram::Packet(Packet::Data(p)) = decode_le(&raw) else { panic!("not data") };
    assert_eq!(p.header.kind(), Some(PacketKind::Data(Service::Agreed)));
    assert_eq!((p.header.seq, p.header.token_round), (1, 2));
    assert_eq!(p.fragments.len(), 1);
    assert_eq!(p.fragments[0].index, -1);
    let m = Message::decode(&p.fragments[0].data).unwrap();
    assert_eq!(m.order, Order::Little);
    assert_eq!(m.header.type_, 0x8008_0090);
    assert_eq!(sender_name(&m.header), b"d1");
    assert_eq!(synced_set_size(&m.header, m.order), 1);
    let g = GroupsMessage::decode(m.order, &m.data).unwrap();
    assert_eq!(g.memb_id, MembershipId { proc_id: D1, time: 0x6b02fea4 });
    assert_eq!(g.synced_set, Some(vec![D1]));
    assert!(g.groups.is_empty());
    // The header builder makes the same 48 bytes.
    let h = groups_message_header(b"d1", 1, true, 17, Order::Little);
    let mut hb = [0u8; 48];
    h.encode_in(Order::Little, &mut hb);
    assert_eq!(&hb[..], &p.fragments[0].data[..48]);
    assert_eq!(g.to_bytes(Order::Little).unwrap(), m.data);
    assert_eq!(Datagram::Packet(Packet::Data(p)).to_bytes(Order::Little).unwrap(), raw);
}

#[test]
fn groups_message_with_a_group() {
    // iv_daemon_restarted_merge #51 (message data only): synced set {d1, d3},
    // group pg, gid (d1, ring A, 1), one daemon record d3 with [#rx#d3].
    let data = hex("ef7a8d5cc2fe026b0102000000ef7a8d5c6e2246ef
                    7067000000000000000000000000000000000000000000000000000000000000
                    ef7a8d5ca4fe026b01000000 0000 0100
                    6e2246ef ef7a8d5ca4fe026b 0100
                    2372782364330000000000000000000000000000000000000000000000000000");
    assert_eq!(data.len(), 115);
    let g = GroupsMessage::decode(Order::Little, &data).unwrap();
    assert_eq!(g.synced_set, Some(vec![D1, D3]));
    assert_eq!(g.groups.len(), 1);
    let pg = &g.groups[0];
    assert_eq!(name_bytes(&pg.name), b"pg");
    assert_eq!(pg.group_id, GroupId { proc_id: D1, time: 0x6b02fea4, index: 1 });
    assert_eq!(pg.changed, 0);
    assert_eq!(
        pg.daemons,
        vec![DaemonRecord {
            proc_id: D3,
            memb_id: MembershipId { proc_id: D1, time: 0x6b02fea4 },
            members: vec![name32(b"#rx#d3")]
        }]
    );
    assert_eq!(g.to_bytes(Order::Little).unwrap(), data);
    // Big-endian round trip.
    let be = g.to_bytes(Order::Big).unwrap();
    assert_eq!(&be[..4], &[0x5c, 0x8d, 0x7a, 0xef]);
    assert_eq!(GroupsMessage::decode(Order::Big, &be).unwrap(), g);
    // Every proper prefix that cuts a record fails; the prefixes ending
    // exactly after the flag, the synced set or a group are valid messages.
    for n in 0..data.len() {
        let r = GroupsMessage::decode(Order::Little, &data[..n]);
        if n == 9 + 4 + 8 {
            assert!(r.is_ok(), "prefix {n}");
        } else {
            assert!(r.is_err(), "prefix {n} decoded");
        }
    }
}

#[test]
fn safe_kill_message() {
    // v_client_join_leave #83: daemon-generated KILL_MESS|SAFE_MESS, no groups.
    let raw = hex("90000080a065c514a065c514ef7a8d5cc2fe026b07000000320000009e19fbb530000000ffff3000
                   a0000480236a6b2364320000000000000000000000000000000000000000000000000000000000008000008000000000");
    let Datagram::Packet(Packet::Data(p)) = decode_le(&raw) else { panic!("not data") };
    assert_eq!(p.header.kind(), Some(PacketKind::Data(Service::Safe)));
    let m = Message::decode(&p.fragments[0].data).unwrap();
    assert_eq!(m.header.type_ & !crate::consts::ENDIAN_RESERVED, KILL_MESS | SAFE_MESS);
    assert_eq!(name_bytes(&m.header.sender), b"#jk#d2");
    assert!(m.groups.is_empty() && m.data.is_empty());
    assert_eq!(m.to_bytes().unwrap(), p.fragments[0].data);
}

// ---- samples of every kind, both byte orders --------------------------------

fn pheader(type_: u32) -> PacketHeader {
    PacketHeader {
        type_,
        transmiter_id: D1,
        proc_id: D2,
        memb_id: MembershipId { proc_id: D1, time: 1_795_358_372 },
        seq: 0x0102_0304,
        token_round: -7,
        conf_hash: HASH,
        data_len: 0,
        padding: [0, 0],
        first_frag: FragmentHeader::default(),
    }
}

fn theader(type_: u32) -> TokenHeader {
    TokenHeader {
        type_,
        transmiter_id: D3,
        proc_id: D3,
        memb_id: MembershipId { proc_id: D2, time: 1_795_358_401 },
        seq: 4022,
        aru: 3333,
        aru_last_id: -1,
        flow_control: -2,
        rtr_len: 0,
        conf_hash: HASH,
    }
}

fn message_bytes(type_: u32, groups: &[&[u8]], data: &[u8]) -> Vec<u8> {
    let m = Message {
        order: Order::Little,
        header: Header {
            type_: type_ | Order::Little.marker(),
            sender: name32(b"#tx#d1"),
            num_groups: 0,
            hint: 0x8000_0a80,
            data_len: 0,
        },
        groups: groups.iter().map(|g| name32(g)).collect(),
        data: data.to_vec(),
    };
    m.to_bytes().unwrap()
}

fn ring(n: i32) -> RingRecord {
    RingRecord {
        memb_id: MembershipId { proc_id: D1, time: -1 },
        trans_time: 1_795_358_389 + n,
        aru: 689,
        highest_seq: 700,
        holes: (690..690 + n).collect(),
        trans: vec![D1, D3],
        commit_rest: vec![D2],
    }
}

/// The length fields (`data_len`, `rtr_len`, the first fragment header) a
/// datagram's encoding fills in, zeroed.
fn without_length_fields(d: &Datagram) -> Datagram {
    let mut d = d.clone();
    match &mut d {
        Datagram::Packet(p) => {
            let h = match p {
                Packet::Data(x) => &mut x.header,
                Packet::Alive(x) => &mut x.header,
                Packet::Join(x) => &mut x.header,
                Packet::Refer(x) => &mut x.header,
                Packet::Hurry(h) => h,
                Packet::Control(x) => &mut x.header,
            };
            h.data_len = 0;
            h.first_frag = FragmentHeader::default();
        }
        Datagram::Token(t) => match t {
            Token::Regular(x) => x.header.rtr_len = 0,
            Token::Form1(x) => x.header.rtr_len = 0,
            Token::Form2(x) => x.header.rtr_len = 0,
        },
    }
    d
}

/// One datagram of every kind the module decodes, with its length fields as
/// the encoder sets them (the samples are written with them left at 0).
fn samples() -> Vec<Datagram> {
    raw_samples()
        .into_iter()
        .map(|d| {
            let (_, n) = Datagram::decode(&d.to_bytes(Order::Little).unwrap()).unwrap();
            // Encoding changed nothing but the length fields.
            assert_eq!(without_length_fields(&n), d);
            n
        })
        .collect()
}

fn raw_samples() -> Vec<Datagram> {
    let msg = message_bytes(AGREED_MESS, &[b"pg"], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let join_msg = message_bytes(JOIN_MESS, &[b"grp1"], &[]);
    let mut routed = pheader(AGREED_TYPE | ROUTED_TYPE);
    routed.padding = [0, 0];
    let status = Status {
        sec: 1,
        state: 4,
        gstate: 1,
        window: 160,
        personal_window: 20,
        accelerated_window: 15,
        major_version: 5,
        patch_version: 1,
        my_id: D1,
        leader_id: -1,
        ..Default::default()
    };
    vec![
        Datagram::Packet(Packet::Data(DataPacket {
            header: routed,
            // 90-byte messages: pads of 2 bytes, as in ii_steady_state #24.
            fragments: vec![
                Fragment { index: -1, data: msg.clone() },
                Fragment { index: -1, data: msg.clone() },
                Fragment { index: -1, data: join_msg },
            ],
        })),
        Datagram::Packet(Packet::Data(DataPacket {
            header: pheader(SAFE_TYPE),
            fragments: vec![Fragment { index: 1, data: vec![0xab; PACKET_BODY_MAX] }],
        })),
        Datagram::Packet(Packet::Alive(AlivePacket {
            header: pheader(ALIVE_TYPE),
            members: vec![D2, D1, D3],
            num_pending: 0,
        })),
        Datagram::Packet(Packet::Join(JoinPacket {
            header: pheader(JOIN_TYPE),
            members: vec![D2],
            num_pending: 0,
            reps: RepList {
                rep_index: 1,
                reps: vec![
                    RepInfo { proc_id: D2, rep_type: RepType::Seg, seg_index: 0 },
                    RepInfo { proc_id: D1, rep_type: RepType::Ring, seg_index: 3 },
                ],
            },
        })),
        Datagram::Packet(Packet::Refer(ReferPacket {
            header: PacketHeader { memb_id: MembershipId { proc_id: D3, time: 2 }, ..pheader(REFER_TYPE) },
        })),
        Datagram::Packet(Packet::Hurry(pheader(HURRY_TYPE))),
        Datagram::Packet(Packet::Control(ControlPacket {
            header: pheader(STATUS_TYPE),
            body: ControlBody::StatusQuery,
        })),
        Datagram::Packet(Packet::Control(ControlPacket {
            header: pheader(STATUS_TYPE),
            body: ControlBody::StatusReply(status),
        })),
        Datagram::Packet(Packet::Control(ControlPacket {
            header: pheader(PARTITION_TYPE),
            body: ControlBody::Partition((0..128).map(|i| (i % 3) as i16 - 1).collect()),
        })),
        Datagram::Packet(Packet::Control(ControlPacket {
            header: pheader(FC_TYPE),
            body: ControlBody::FlowControl((0..128).map(|i| [i as i16, -1]).collect()),
        })),
        Datagram::Packet(Packet::Control(ControlPacket { header: pheader(RELOAD_TYPE), body: ControlBody::Reload })),
        Datagram::Token(Token::Regular(RegularToken {
            header: theader(0x0017_0000),
            requests: vec![
                RetransRequest {
                    memb_id: MembershipId { proc_id: D1, time: 5 },
                    proc_id: D2,
                    seg_index: -1,
                    seqs: vec![7, 9],
                },
                RetransRequest {
                    memb_id: MembershipId { proc_id: D1, time: 5 },
                    proc_id: -1,
                    seg_index: 0,
                    seqs: vec![],
                },
            ],
        })),
        Datagram::Token(Token::Form1(Form1Token {
            header: theader(FORM1_TYPE),
            members: MemberList { members: vec![D2], pending: vec![D1, D3] },
            reps: RepList {
                rep_index: 1,
                reps: vec![
                    RepInfo { proc_id: D2, rep_type: RepType::Seg, seg_index: 0 },
                    RepInfo { proc_id: D1, rep_type: RepType::Other(9), seg_index: 0 },
                ],
            },
            rings: vec![ring(0), ring(2)],
        })),
        Datagram::Token(Token::Form2(Form2Token {
            header: theader(FORM2_TYPE),
            members: MemberList { members: vec![], pending: vec![D1, D2, D3] },
            new_memb_id: MembershipId { proc_id: 0x0002_0002, time: D2 },
            rings: vec![ring(1)],
        })),
    ]
}

#[test]
fn both_byte_orders_round_trip() {
    for d in samples() {
        let le = d.to_bytes(Order::Little).unwrap();
        let be = d.to_bytes(Order::Big).unwrap();
        assert_eq!(le.len(), be.len());
        assert_eq!(le[0] & 0x80, 0x80, "LE marker");
        assert_eq!(be[0] & 0x80, 0, "BE marker");
        // The type word differs only by the marker; the next seven header
        // words are plain i32s: their bytes are swapped.
        let t_le = u32::from_le_bytes([le[0], le[1], le[2], le[3]]);
        let t_be = u32::from_be_bytes([be[0], be[1], be[2], be[3]]);
        assert_eq!((t_le ^ t_be, t_be & 0x8000_0080), (0x8000_0080, 0));
        for w in 1..8 {
            let mut x = le[4 * w..4 * w + 4].to_vec();
            x.reverse();
            assert_eq!(x, &be[4 * w..4 * w + 4], "{d:?} word {w}");
        }
        for (bytes, order) in [(&le, Order::Little), (&be, Order::Big)] {
            let (o, back) = Datagram::decode(bytes).unwrap();
            assert_eq!(o, order);
            assert_eq!(back, d, "{order:?}");
            // Re-encoding a foreign-order packet in the other order gives the other bytes.
            assert_eq!(&back.to_bytes(order.flipped()).unwrap(), if order == Order::Little { &be } else { &le });
        }
        // The port-specific decoders agree.
        match &d {
            Datagram::Packet(p) => assert_eq!(&Packet::decode(&be).unwrap().1, p),
            Datagram::Token(t) => assert_eq!(&Token::decode(&be).unwrap().1, t),
        }
    }
}

#[test]
fn lengths_are_recomputed_and_fields_placed() {
    let s = samples();
    let le = s[0].to_bytes(Order::Little).unwrap();
    assert_eq!(le.len(), 40 + 90 + 2 + 4 + 90 + 2 + 4 + 80);
    assert_eq!(&le[32..34], &((90 + 6 + 90 + 6 + 80) as u16).to_le_bytes());
    assert_eq!(&le[36..40], &[0xff, 0xff, 90, 0]);
    assert_eq!(&le[40 + 90..40 + 96], &[0, 0, 0xff, 0xff, 90, 0]);
    let Datagram::Token(Token::Form1(f)) = &s[12] else { unreachable!() };
    let b = s[12].to_bytes(Order::Little).unwrap();
    let body = 516 + 204 + 4 + f.rings.iter().map(|r| r.encoded_len()).sum::<usize>();
    assert_eq!(b.len(), 40 + body);
    assert_eq!(&b[34..36], &(body as u16).to_le_bytes());
    assert_eq!(&b[40..44], &[1, 0, 2, 0]);
    assert!(b[40 + 4 + 12..40 + 516].iter().all(|&x| x == 0), "unused members written as zeros");
    let Datagram::Token(Token::Form2(_)) = &s[13] else { unreachable!() };
    let b = s[13].to_bytes(Order::Big).unwrap();
    assert_eq!(&b[40 + 516..40 + 524], &[0, 2, 0, 2, 0x14, 0xc5, 0x65, 0xa0]);
}

#[test]
fn classification() {
    assert_eq!(PacketKind::of_type(0x8000_0088), Some(PacketKind::Data(Service::Agreed)));
    assert_eq!(PacketKind::of_type(AGREED_TYPE | ROUTED_TYPE), Some(PacketKind::Data(Service::Agreed)));
    assert_eq!(PacketKind::of_type(ALIVE_TYPE | JOIN_TYPE), Some(PacketKind::Membership(MembershipKind::Alive)));
    assert_eq!(PacketKind::of_type(REFER_TYPE | SAFE_TYPE), Some(PacketKind::Membership(MembershipKind::Refer)));
    assert_eq!(PacketKind::of_type(HURRY_TYPE | SAFE_TYPE), Some(PacketKind::Hurry));
    assert_eq!(PacketKind::of_type(STATUS_TYPE | PARTITION_TYPE), Some(PacketKind::Control(ControlKind::Partition)));
    assert_eq!(PacketKind::of_type(ROUTED_TYPE), None);
    assert_eq!(PacketKind::of_type(0), None);
    assert_eq!(Service::of_type(RELIABLE_TYPE | SAFE_TYPE), Some(Service::Safe));
    assert_eq!(TokenKind::of_type(FORM_TYPE), TokenKind::Form1);
    assert_eq!(TokenKind::of_type(FORM2_TYPE | 0x0030_0000), TokenKind::Form2);
    assert_eq!(TokenKind::of_type(0x00ff_0000), TokenKind::Regular);
    assert!(!Datagram::is_packet_type(0x80ff_3080));
    // A header with no known bit is refused on port P; the type-based
    // router sends it to the token decoder.
    let mut b = Vec::new();
    pheader(0).encode(Order::Little, &mut b);
    assert_eq!(Packet::decode(&b), Err(Error::UnknownType(0)));
    // Mixed marker.
    let mut m = b.clone();
    m[3] = 0;
    assert_eq!(Datagram::decode(&m), Err(Error::BadMarker([0x80, 0, 0, 0])));
}

#[test]
fn split_message_like_the_daemon() {
    let f = split_message(&vec![7u8; 20_080]).unwrap();
    assert_eq!(f.len(), 15);
    assert!(f[..14].iter().enumerate().all(|(i, x)| x.index == i as i16 + 1 && x.data.len() == 1432));
    assert_eq!((f[14].index, f[14].data.len()), (-15, 32));
    let f = split_message(&vec![7u8; 2080]).unwrap();
    assert_eq!(f.iter().map(|x| (x.index, x.data.len())).collect::<Vec<_>>(), vec![(1, 1432), (-2, 648)]);
    assert_eq!(split_message(&[1; 90]).unwrap()[0].index, -1);
    assert!(split_message(&[]).is_err());
    assert!(split_message(&vec![0; 100 * 1432 + 1]).is_err());
    assert!(f[0].starts_message() && !f[0].ends_message() && f[1].ends_message() && !f[1].starts_message());
}

#[test]
fn encoders_refuse_what_does_not_fit() {
    let too_long = DataPacket {
        header: pheader(AGREED_TYPE),
        fragments: vec![Fragment { index: -1, data: vec![0; 1000] }, Fragment { index: -1, data: vec![0; 429] }],
    };
    let mut out = vec![9];
    assert!(matches!(too_long.encode(Order::Little, &mut out), Err(Error::TooLarge { .. })));
    assert!(matches!(
        DataPacket { header: pheader(AGREED_TYPE), fragments: vec![] }.encode(Order::Little, &mut out),
        Err(Error::BadValue { .. })
    ));
    let members = MemberList { members: vec![1; 100], pending: vec![2; 29] };
    let f = Form2Token { header: theader(FORM2_TYPE), members, ..Default::default() };
    assert!(matches!(f.encode(Order::Big, &mut out), Err(Error::TooLarge { .. })));
    let j = JoinPacket {
        header: pheader(JOIN_TYPE),
        reps: RepList { rep_index: 0, reps: vec![RepInfo { proc_id: 1, rep_type: RepType::Seg, seg_index: 0 }; 26] },
        ..Default::default()
    };
    assert!(matches!(j.encode(Order::Little, &mut out), Err(Error::TooLarge { .. })));
    assert_eq!(out, vec![9], "nothing appended on error");
}

// ---- truncated and garbage input --------------------------------------------

/// A small deterministic generator (xorshift64*), so failures repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Decode every way there is; if it decodes, encoding and decoding again must
/// give the same value.
fn decode_all_ways(b: &[u8]) -> bool {
    let mut ok = false;
    if let Ok((o, d)) = Datagram::decode(b) {
        let again = d.to_bytes(o).expect("a decoded datagram encodes");
        assert_eq!(Datagram::decode(&again).unwrap(), (o, d.clone()));
        ok = true;
    }
    if let Ok((o, p)) = Packet::decode(b) {
        let mut v = Vec::new();
        p.encode(o, &mut v).unwrap();
        assert_eq!(Packet::decode(&v).unwrap(), (o, p));
    }
    if let Ok((o, t)) = Token::decode(b) {
        let mut v = Vec::new();
        t.encode(o, &mut v).unwrap();
        assert_eq!(Token::decode(&v).unwrap(), (o, t));
    }
    let _ = PacketHeader::decode(b);
    let _ = TokenHeader::decode(b);
    if let Ok(m) = Message::decode(b) {
        assert_eq!(Message::decode(&m.to_bytes().unwrap()).unwrap(), m);
    }
    for o in [Order::Little, Order::Big] {
        if let Ok(g) = GroupsMessage::decode(o, b) {
            assert_eq!(GroupsMessage::decode(o, &g.to_bytes(o).unwrap()).unwrap(), g);
        }
        let _ = Status::decode(o, b);
    }
    ok
}

#[test]
fn every_truncation_is_an_error() {
    for d in samples() {
        for order in [Order::Little, Order::Big] {
            let b = d.to_bytes(order).unwrap();
            for n in 0..b.len() {
                assert!(Datagram::decode(&b[..n]).is_err(), "{d:?} cut at {n}");
                decode_all_ways(&b[..n]);
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(Datagram::decode(&longer).is_err(), "one extra byte");
        }
    }
    let m = message_bytes(AGREED_MESS, &[b"a", b"b"], b"hello");
    for n in 0..m.len() {
        assert!(Message::decode(&m[..n]).is_err(), "message cut at {n}");
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // Random buffers, half of them with a valid marker and plausible lengths.
    for i in 0..20_000 {
        let len = (rng.next() % 1600) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && len >= 40 {
            b[0] |= 0x80;
            b[3] |= 0x80;
            let body = (len - 40) as u16;
            b[32..34].copy_from_slice(&body.to_le_bytes());
            b[34..36].copy_from_slice(&body.to_le_bytes());
        }
        decode_all_ways(&b);
    }
    // Every single-byte change of every sample.
    for d in samples() {
        for order in [Order::Little, Order::Big] {
            let b = d.to_bytes(order).unwrap();
            for pos in 0..b.len() {
                for x in [0x01u8, 0x80, 0xff] {
                    let mut m = b.clone();
                    m[pos] ^= x;
                    decode_all_ways(&m);
                }
            }
        }
    }
}

#[test]
fn absurd_counts_allocate_nothing_and_fail() {
    // FORM2 with num_rings = i32::MAX and a ring with num_holes = i32::MAX.
    let f = Form2Token { header: theader(FORM2_TYPE), rings: vec![ring(0)], ..Default::default() };
    let mut b = Vec::new();
    f.encode(Order::Little, &mut b).unwrap();
    let rings_at = 40 + 516 + 8;
    let mut m = b.clone();
    m[rings_at..rings_at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(Token::decode(&m), Err(Error::Truncated { .. })));
    let mut m = b.clone();
    m[rings_at + 4 + 20..rings_at + 4 + 24].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(Token::decode(&m), Err(Error::Truncated { .. })));
    let mut m = b;
    m[40..42].copy_from_slice(&(-1i16).to_le_bytes());
    assert_eq!(Token::decode(&m), Err(Error::BadValue { what: "num_members", value: -1 }));
    // GROUPS: a synced set of 2^32 − 1 VIDs.
    let mut g = vec![0u8; 9];
    g[8] = 1;
    g.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(GroupsMessage::decode(Order::Little, &g), Err(Error::Truncated { .. })));
    g[8] = 2;
    assert_eq!(GroupsMessage::decode(Order::Little, &g), Err(Error::BadValue { what: "GROUPS flag", value: 2 }));
}

#[test]
fn message_types_of_samples() {
    let s = samples();
    let Datagram::Packet(Packet::Data(p)) = &s[0] else { unreachable!() };
    assert!(p.follows_packing_rule());
    let h = p.fragments[2].message_header().unwrap();
    assert_eq!(h.type_ & JOIN_MESS, JOIN_MESS);
    assert!(p.header.is_routed());
    let Datagram::Packet(Packet::Data(p)) = &s[1] else { unreachable!() };
    assert!(p.fragments[0].message_header().is_some());
    let Datagram::Packet(Packet::Refer(r)) = &s[4] else { unreachable!() };
    assert_eq!((r.rep_proc_id(), r.rep_type()), (D3, RepType::Ring));
    let gh = groups_message_header(b"d2", 3, false, 9, Order::Big);
    assert_eq!(gh.type_, GROUPS_MESS | crate::consts::RELIABLE_MESS);
    assert_eq!(synced_set_size(&gh, Order::Big), 3);
    assert_eq!(&gh.sender[28..], &[0, 0, 0, 3]);
}
