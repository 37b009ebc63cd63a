//! The receive path: daemon→client frames TV-11..TV-13 and TV-18..TV-24,
//! the short-buffer table of §5.4 (with the fixed last row), scatter
//! receives and the membership helpers (client spec §1.5, §2.7, §2.8, §6).

mod sp_common;

use std::os::raw::c_char;

use sp_common::*;
use spread_ffi::sp::*;
use spread_ffi::types::*;
use spread_wire::membership::{encode_regular_body, GroupId};
use spread_wire::Order;

#[allow(clippy::too_many_arguments)]
fn rx(
    ret: i32,
    service: u32,
    sender: &str,
    num_groups: i32,
    groups: &[&str],
    mess_type: i16,
    em: i32,
    body: &[u8],
) -> Rx {
    Rx {
        ret,
        service: service as i32,
        sender: sender.into(),
        num_groups,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        mess_type,
        endian_mismatch: em,
        body: body.to_vec(),
    }
}

fn memb_body(order: Order, gid: (i32, i32, i32), sets: &[&[&str]], local: usize) -> Vec<u8> {
    let sets: Vec<Vec<[u8; 32]>> = sets.iter().map(|s| s.iter().map(|n| name32(n)).collect()).collect();
    let refs: Vec<&[[u8; 32]]> = sets.iter().map(|s| &s[..]).collect();
    let mut b = Vec::new();
    encode_regular_body(order, &GroupId { proc_id: gid.0, time: gid.1, index: gid.2 }, &refs, local, &mut b);
    b
}

fn memb_info(body: &[u8], service: i32) -> (i32, membership_info) {
    let mut mi = membership_info {
        gid: group_id { id: [9, 9, 9] },
        changed_member: [0x41; 32],
        num_vs_sets: 99,
        my_vs_set: vs_set_info { num_members: 99, members_offset: 99 },
    };
    let r = unsafe { SP_get_memb_info(body.as_ptr() as *const c_char, service, &mut mi) };
    (r, mi)
}

fn cm(mi: &membership_info) -> String {
    let b: Vec<u8> = mi.changed_member.iter().map(|&c| c as u8).collect();
    String::from_utf8_lossy(spread_wire::names::name_bytes(&b)).into_owned()
}

#[test]
fn tv11_to_tv13_and_tv23_le_daemon() {
    let gid = (0x1cc59726, 0x6b02f848, 1);
    let body = memb_body(Order::Little, gid, &[&["#user1#fake"]], 0);
    assert_eq!(body.len(), 56);
    let mut frames = frame_le(0x8000_1180, "grp1", &["#user1#fake"], 0x8000_0080, &body);
    assert_eq!(frames.len(), 136);
    frames.extend(frame_le(0x8000_0090, "#user1#fake", &["grp1"], 0x8012_3480, b"hello"));
    frames.extend(frame_le(0x8000_0280, "grp1", &[], 0x8000_0080, b""));
    let trans = hex("6f000000 de000000 03000000");
    frames.extend(frame_le(0x8000_2080, "grp", &[], 0x8000_0080, &trans));
    let (mbox, h) = open_with_frames(21020, "user1", frames);

    // TV-11
    let r = recv(mbox, 0, 10, 1000);
    assert_eq!(r, rx(56, 0x1100, "grp1", 1, &["#user1#fake"], 0, 0, &body));
    let (ok, mi) = memb_info(&r.body, r.service);
    assert_eq!(ok, 1);
    assert_eq!(mi.gid.id, [482711334, 1795356744, 1]);
    assert_eq!(cm(&mi), "#user1#fake");
    assert_eq!((mi.num_vs_sets, mi.my_vs_set), (1, vs_set_info { num_members: 1, members_offset: 24 }));
    let mut sets = [vs_set_info::default(); 4];
    let mut my = 77u32;
    let n = unsafe { SP_get_vs_sets_info(r.body.as_ptr() as *const c_char, sets.as_mut_ptr(), 4, &mut my) };
    assert_eq!((n, my, sets[0]), (1, 0, vs_set_info { num_members: 1, members_offset: 24 }));
    assert_eq!(sets[1], vs_set_info::default(), "only the real sets are written");
    let mut names = [[0 as c_char; 32]; 2];
    let n = unsafe { SP_get_vs_set_members(r.body.as_ptr() as *const c_char, &sets[0], names.as_mut_ptr(), 2) };
    assert_eq!(n, 1);
    assert_eq!(names[0].map(|c| c as u8), name32("#user1#fake"));
    assert_eq!(
        unsafe { SP_get_vs_set_members(r.body.as_ptr() as *const c_char, &sets[0], names.as_mut_ptr(), 0) },
        BUFFER_TOO_SHORT
    );
    assert_eq!(
        unsafe { SP_get_vs_sets_info(r.body.as_ptr() as *const c_char, sets.as_mut_ptr(), 0, &mut my) },
        BUFFER_TOO_SHORT
    );

    // TV-12
    assert_eq!(recv(mbox, 0, 10, 1000), rx(5, 0x10, "#user1#fake", 1, &["grp1"], 4660, 0, b"hello"));
    // TV-13: self-leave, mess_type -1.
    let r = recv(mbox, 0, 10, 1000);
    assert_eq!(r, rx(0, 0x200, "grp1", 0, &[], -1, 0, b""));
    // Membership helpers on a transitional / self-leave keep changed_member.
    let (ok, mi) = memb_info(&trans, 0x200);
    assert_eq!((ok, cm(&mi).len(), mi.num_vs_sets, mi.my_vs_set.members_offset), (1, 32, 0, 0));
    // TV-23: transitional, body not converted.
    assert_eq!(recv(mbox, 0, 10, 1000), rx(12, 0x2000, "grp", 0, &[], -1, 0, &trans));
    let (ok, mi) = memb_info(&trans, 0x2000);
    assert_eq!((ok, mi.gid.id), (1, [111, 222, 3]));
    assert_eq!(memb_info(&trans, 0x10).0, ILLEGAL_MESSAGE);
    // A rejected JOIN passes the membership check (§6 item 4, kept).
    assert_eq!(memb_info(&trans, 0x0040_0100).0, 1);
    kill(mbox);
    h.join().unwrap();
}

#[test]
fn tv18_to_tv22_foreign_orders_and_rejects() {
    let mut frames = frame_be(0x10, "#snd#be", &["grp"], [0, 0x12, 0x34, 0], b"ABCD");
    frames.extend(frame_le(0x8000_0090, "#snd#be", &["grp"], u32::from_le_bytes([0, 0x12, 0x34, 0]), b"ABCD"));
    let be_body = memb_body(Order::Big, (111, 222, 3), &[&["#x#other"], &["#u#fake"]], 1);
    frames.extend(frame_be(0x1800, "grp", &["#u#fake", "#x#other"], [0; 4], &be_body));
    // TV-21: LE reject of a FIFO message (old_type between header and groups).
    let mut f = frame_le(0x8040_0080, "#u#fake", &[], 0x8000_0780, b"");
    f[36..40].copy_from_slice(&2i32.to_le_bytes());
    f[44..48].copy_from_slice(&2i32.to_le_bytes());
    f.extend(hex("84 00 00 80"));
    f.extend_from_slice(&name32("grp"));
    f.extend_from_slice(&name32("#u#fake"));
    f.extend(hex("5a 5a"));
    frames.extend(f);
    // TV-22: BE reject of a JOIN.
    let mut f = frame_be(0x0040_0000, "#u#fake", &[], [0; 4], b"");
    f[36..40].copy_from_slice(&2i32.to_be_bytes());
    f.extend(hex("00 00 01 00"));
    f.extend_from_slice(&name32("grp2"));
    f.extend_from_slice(&name32("#u#fake"));
    frames.extend(f);
    let (mbox, h) = open_with_frames(21021, "u", frames);

    let want18 = rx(4, 0x10, "#snd#be", 1, &["grp"], 4660, 1, b"ABCD");
    assert_eq!(recv(mbox, 0, 5, 100), want18);
    assert_eq!(recv(mbox, 0, 5, 100), want18);
    // TV-20: body converted in place to host order.
    let r = recv(mbox, 0, 5, 200);
    let le_body = memb_body(Order::Little, (111, 222, 3), &[&["#x#other"], &["#u#fake"]], 1);
    assert_eq!(r, rx(92, 0x1800, "grp", 2, &["#u#fake", "#x#other"], 0, 0, &le_body));
    let (ok, mi) = memb_info(&r.body, r.service);
    assert_eq!((ok, mi.gid.id, mi.num_vs_sets), (1, [111, 222, 3], 2));
    assert_eq!(mi.my_vs_set, vs_set_info { num_members: 1, members_offset: 60 });
    assert_eq!(mi.changed_member, [0; 32]);
    let mut sets = [vs_set_info::default(); 2];
    let mut my = 77u32;
    let n = unsafe { SP_get_vs_sets_info(r.body.as_ptr() as *const c_char, sets.as_mut_ptr(), 2, &mut my) };
    assert_eq!((n, my), (2, 1));
    assert_eq!(
        sets,
        [vs_set_info { num_members: 1, members_offset: 24 }, vs_set_info { num_members: 1, members_offset: 60 }]
    );
    // TV-21
    assert_eq!(recv(mbox, 0, 5, 100), rx(2, 0x0040_0004, "#u#fake", 2, &["grp", "#u#fake"], 7, 0, &[0x5a, 0x5a]));
    // TV-22
    assert_eq!(recv(mbox, 0, 5, 100), rx(0, 0x0040_0100, "#u#fake", 2, &["grp2", "#u#fake"], 0, 1, b""));
    kill(mbox);
    h.join().unwrap();
}

#[test]
fn tv24_negative_num_groups_is_illegal_and_touches_nothing() {
    let mut f = frame_le(0x8000_0090, "#a#b", &[], 0x8000_0080, b"");
    f[36..40].copy_from_slice(&(-1i32).to_le_bytes());
    let mut g = frame_le(0x8000_0090, "#a#b", &[], 0x8000_0080, b"");
    g[44..48].copy_from_slice(&i32::MIN.to_le_bytes());
    f.extend(g);
    let (mbox, h) = open_with_frames(21022, "n", f);
    let untouched = Rx {
        ret: ILLEGAL_MESSAGE,
        service: 0,
        sender: "Z".repeat(32),
        num_groups: SENTINEL,
        groups: vec![],
        mess_type: SENTINEL16,
        endian_mismatch: SENTINEL,
        body: vec![],
    };
    assert_eq!(recv(mbox, 0, 5, 100), untouched);
    assert_eq!(recv(mbox, DROP_RECV as i32, 5, 100), Rx { service: DROP_RECV as i32, ..untouched.clone() });
    kill(mbox);
    h.join().unwrap();
}

/// A FIFO message of 4 bytes to one group with the given mess_type.
fn msg(mt: i16, body: &[u8], service: u32) -> Vec<u8> {
    frame_le(0x8000_0080 | service, "#s#fake", &["grp"], spread_wire::header::encode_hint(mt), body)
}

#[test]
fn short_buffer_table_5_4() {
    let mut frames = msg(80, b"abcd", FIFO_MESS);
    frames.extend(msg(77, b"abcd", FIFO_MESS));
    frames.extend(msg(78, b"abcd", FIFO_MESS));
    frames.extend(msg(79, b"abcd", FIFO_MESS));
    frames.extend(msg(-2, b"hello", AGREED_MESS));
    frames.extend(msg(81, b"wxyz", FIFO_MESS));
    let total = frames.len() as i32;
    let (mbox, h) = open_with_frames(21023, "t", frames);
    assert_eq!(wait_poll(mbox, total), total);
    let d = DROP_RECV as i32;

    let r = recv(mbox, 0, 0, 0);
    assert_eq!((r.ret, r.service, r.num_groups, r.mess_type, r.endian_mismatch), (-16, 4, -1, 80, -4));
    assert_eq!(r.sender, "#s#fake");
    // The header is consumed and saved; the rest of the frame stays queued.
    assert_eq!(poll(mbox), total - 48);
    let r = recv(mbox, 0, 1, 3);
    assert_eq!((r.ret, r.service, r.num_groups, r.mess_type, r.endian_mismatch), (-15, 4, 0, 80, -4));
    assert_eq!(recv(mbox, 0, 1, 4), rx(4, 4, "#s#fake", 1, &["grp"], 80, 0, b"abcd"));

    let r = recv(mbox, d, 0, 1000);
    assert_eq!(
        (r.ret, r.service, r.num_groups, r.mess_type, r.endian_mismatch, &r.body[..]),
        (4, 4, -1, 77, 0, &b"abcd"[..])
    );
    let r = recv(mbox, d, 10, 2);
    assert_eq!(
        (r.ret, r.service, r.num_groups, r.mess_type, r.endian_mismatch, &r.body[..]),
        (-15, 4, 1, 78, 0, &b"ab"[..])
    );
    assert_eq!(recv(mbox, 0, 10, 100).mess_type, 79);

    // Last row, fixed: after a saved header, a truncating DROP_RECV consumes
    // the frame and forgets the header; the next receive is the next message.
    assert_eq!(recv(mbox, 0, 10, 2).ret, BUFFER_TOO_SHORT);
    assert_eq!(recv(mbox, 0, 0, 2).ret, GROUPS_TOO_SHORT);
    let r = recv(mbox, d, 0, 2);
    assert_eq!(
        (r.ret, r.service, r.num_groups, r.mess_type, r.endian_mismatch, &r.body[..]),
        (-15, 0x10, -1, -2, 0, &b"he"[..])
    );
    assert_eq!(recv(mbox, 0, 10, 100), rx(4, 4, "#s#fake", 1, &["grp"], 81, 0, b"wxyz"));
    assert_eq!(poll(mbox), 0);
    kill(mbox);
    h.join().unwrap();
}

#[test]
fn drop_recv_truncated_groups_and_membership_index() {
    let body = memb_body(Order::Little, (1, 2, 3), &[&["#m#fake"]], 0);
    let mut frames = frame_le(0x8000_1180, "g", &["#a#fake", "#b#fake", "#m#fake"], 0x8000_0080, &body);
    frames.extend(frame_le(0x8000_1180, "g", &["#a#fake", "#b#fake", "#m#fake"], 0x8000_0080, &body));
    frames.extend(msg(5, b"zz", SAFE_MESS | SELF_DISCARD | 0x4000_0000));
    let (mbox, h) = open_with_frames(21024, "m", frames);
    let d = DROP_RECV as i32;
    // Groups truncated: success, negative count, index not computed (-1).
    let r = recv(mbox, d, 1, 100);
    assert_eq!((r.ret, r.num_groups, r.groups.clone(), r.mess_type), (56, -3, vec!["#a#fake".to_string()], -1));
    // Not truncated: my index.
    assert_eq!(recv(mbox, 0, 3, 100).mess_type, 2);
    // Unknown service bits are handed through; the marker bits never are.
    assert_eq!(recv(mbox, 0, 3, 100).service, (SAFE_MESS | SELF_DISCARD | 0x4000_0000) as i32);
    kill(mbox);
    h.join().unwrap();
}

#[test]
fn scatter_receive_and_scatter_membership_helpers() {
    let be_body = memb_body(Order::Big, (111, 222, 3), &[&["#x#other"], &["#u#fake"]], 1);
    let mut frames = frame_be(0x1800, "grp", &["#u#fake", "#x#other"], [0; 4], &be_body);
    frames.extend(msg(3, b"0123456789", RELIABLE_MESS));
    frames.extend(msg(3, b"0123456789", RELIABLE_MESS));
    let (mbox, h) = open_with_frames(21025, "u", frames);

    // A 5/30/100 split (the case 5.0.1 gets wrong), plus an empty piece.
    let (r, bufs) = scat_recv(mbox, 0, 5, &[5, 0, 25, 100]);
    assert_eq!((r.ret, r.service, r.mess_type, r.groups.len()), (92, 0x1800, 0, 2));
    let flat: Vec<u8> = bufs.concat()[..92].to_vec();
    let le_body = memb_body(Order::Little, (111, 222, 3), &[&["#x#other"], &["#u#fake"]], 1);
    assert_eq!(flat, le_body, "membership body converted across pieces");

    let mut sc = empty_scatter();
    let mut bufs = bufs;
    sc.num_elements = bufs.len();
    for (e, b) in sc.elements.iter_mut().zip(bufs.iter_mut()) {
        *e = scat_element { buf: b.as_mut_ptr() as *mut c_char, len: b.len() };
    }
    let mut mi = membership_info {
        gid: group_id::default(),
        changed_member: [1; 32],
        num_vs_sets: 0,
        my_vs_set: vs_set_info::default(),
    };
    assert_eq!(unsafe { SP_scat_get_memb_info(&sc, 0x1800, &mut mi) }, 1);
    assert_eq!(
        (mi.gid.id, mi.num_vs_sets, mi.my_vs_set),
        ([111, 222, 3], 2, vs_set_info { num_members: 1, members_offset: 60 })
    );
    let mut sets = [vs_set_info { num_members: 7, members_offset: 7 }; 5];
    let mut my = 9u32;
    // Capacity 5, two real sets: only two entries are written (§6 item 3 fix).
    assert_eq!(unsafe { SP_scat_get_vs_sets_info(&sc, sets.as_mut_ptr(), 5, &mut my) }, 2);
    assert_eq!(my, 1);
    assert_eq!(
        sets[..3],
        [
            vs_set_info { num_members: 1, members_offset: 24 },
            vs_set_info { num_members: 1, members_offset: 60 },
            vs_set_info { num_members: 7, members_offset: 7 }
        ]
    );
    let mut names = [[0 as c_char; 32]; 1];
    for (i, want) in [(0, "#x#other"), (1, "#u#fake")] {
        assert_eq!(unsafe { SP_scat_get_vs_set_members(&sc, &sets[i], names.as_mut_ptr(), 1) }, 1);
        assert_eq!(names[0].map(|c| c as u8), name32(want));
    }
    // Offsets beyond the scatter read as zeros, never out of bounds.
    let far = vs_set_info { num_members: 1, members_offset: 1_000_000 };
    assert_eq!(unsafe { SP_scat_get_vs_set_members(&sc, &far, names.as_mut_ptr(), 1) }, 1);
    assert_eq!(names[0], [0; 32]);
    sc.num_elements = 5000; // clamped to the 100 elements the struct has
    assert_eq!(unsafe { SP_scat_get_memb_info(&sc, 0x1800, &mut mi) }, 1);

    // A data body split over pieces.
    let (r, bufs) = scat_recv(mbox, 0, 1, &[3, 3, 100]);
    assert_eq!((r.ret, &bufs[0][..], &bufs[1][..], &bufs[2][..4]), (10, &b"012"[..], &b"345"[..], &b"6789"[..]));
    // More than 100 elements: refused before anything is read.
    let mut big = empty_scatter();
    big.num_elements = 101;
    let mut service = 0;
    let r = unsafe {
        SP_scat_receive(
            mbox,
            &mut service,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut big,
        )
    };
    assert_eq!(r, ILLEGAL_MESSAGE);
    // NULL outputs are simply not written.
    let mut buf = [0u8; 16];
    let r = unsafe {
        SP_receive(
            mbox,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            16,
            buf.as_mut_ptr() as *mut c_char,
        )
    };
    assert_eq!(r, GROUPS_TOO_SHORT);
    kill(mbox);
    h.join().unwrap();
}

/// A rejected message whose original type carried REG_MEMB_MESS (a client
/// may set it next to a data bit): 5.0.1 looks at the header's type only, so
/// no "my index" replaces mess_type and the body is not converted.
#[test]
fn reject_of_a_perverse_membership_typed_message() {
    let mut f = frame_le(0x8040_0080, "#r#fake", &[], 0x8000_2a80, b"");
    f[36..40].copy_from_slice(&2i32.to_le_bytes());
    f[44..48].copy_from_slice(&4i32.to_le_bytes());
    f.extend(hex("82 10 00 80"));
    f.extend_from_slice(&name32("grp"));
    f.extend_from_slice(&name32("#r#fake"));
    f.extend(hex("01 02 03 04"));
    let (mbox, h) = open_with_frames(21026, "r", f);
    let r = recv(mbox, 0, 5, 100);
    assert_eq!(r, rx(4, 0x0040_1002, "#r#fake", 2, &["grp", "#r#fake"], 42, 0, &[1, 2, 3, 4]));
    kill(mbox);
    h.join().unwrap();
}
