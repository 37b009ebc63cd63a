//! The send path: exact client→daemon frames (TV-5..TV-10) and argument
//! checks (client spec §1.5, §2.6, §6 items 5 and 12).

mod sp_common;

use std::os::raw::c_char;
use std::sync::mpsc;

use sp_common::*;
use spread_ffi::sp::*;
use spread_ffi::types::*;

fn header(type_: &str, sender: &str, ng: u32, hint: &str, len: u32) -> Vec<u8> {
    let mut v = hex(type_);
    v.extend_from_slice(&name32(sender));
    v.extend_from_slice(&ng.to_le_bytes());
    v.extend(hex(hint));
    v.extend_from_slice(&len.to_le_bytes());
    v
}

#[test]
fn tv5_to_tv8_frames() {
    let (tx, rx) = mpsc::channel();
    let (mbox, h) = open(21010, "user1", move |mut s| {
        for _ in 0..9 {
            tx.send(read_frame(&mut s).3).unwrap();
        }
        expect_eof(&mut s);
    });
    let me = "#user1#fake";
    // TV-5 join / leave.
    assert_eq!(join(mbox, b"grp1"), 0);
    let mut want = header("80 00 01 80", me, 1, "80 00 00 80", 0);
    want.extend_from_slice(&name32("grp1"));
    assert_eq!(rx.recv().unwrap(), want);
    assert_eq!(leave(mbox, b"grp1"), 0);
    want[2] = 2;
    assert_eq!(rx.recv().unwrap(), want);
    // TV-6
    assert_eq!(multicast(mbox, AGREED_MESS, "grp1", 0x1234, b"hello"), 5);
    let mut want = header("90 00 00 80", me, 1, "80 34 12 80", 5);
    want.extend_from_slice(&name32("grp1"));
    want.extend_from_slice(b"hello");
    assert_eq!(rx.recv().unwrap(), want);
    // TV-7: mess_type -2.
    assert_eq!(multicast(mbox, AGREED_MESS, "grp1", -2, b"hello"), 5);
    assert_eq!(&rx.recv().unwrap()[40..44], &hex("80 fe ff 80")[..]);
    // TV-8: multigroup. The original copies each 32-byte entry verbatim, bytes
    // after the NUL too (the caller's memory); ours sends zeros after the NUL.
    let mut groups = [[0 as c_char; 32]; 2];
    for (d, s) in groups[0].iter_mut().zip(b"grp1\0junk") {
        *d = *s as c_char;
    }
    for (d, s) in groups[1].iter_mut().zip(b"#user1#localhost") {
        *d = *s as c_char;
    }
    let r = unsafe {
        SP_multigroup_multicast(
            mbox,
            (SAFE_MESS | SELF_DISCARD) as i32,
            2,
            groups.as_ptr(),
            0x4142,
            3,
            b"abc".as_ptr() as *const c_char,
        )
    };
    assert_eq!(r, 3);
    let mut want = header("e0 00 00 80", me, 2, "80 42 41 80", 3);
    want.extend_from_slice(&name32("grp1"));
    want.extend_from_slice(&name32("#user1#localhost"));
    want.extend_from_slice(b"abc");
    assert_eq!(rx.recv().unwrap(), want);
    // Single-group forms truncate to 31 characters; service marker bits are
    // replaced, every other bit goes through (TV-9 included).
    let long = "g".repeat(40);
    assert_eq!(multicast(mbox, RELIABLE_MESS | AGREED_MESS | 0x8000_0080 | 0x4000_0000, &long, 0, b""), 0);
    let f = rx.recv().unwrap();
    assert_eq!(&f[0..4], &hex("92 00 00 c0")[..]);
    assert_eq!(&f[48..80], &name32(&"g".repeat(31))[..]);
    // Scatter multicast: pieces go out back to back.
    let mut sc = empty_scatter();
    let parts: [&[u8]; 3] = [b"ab", b"", b"cde"];
    sc.num_elements = 3;
    for (e, p) in sc.elements.iter_mut().zip(parts) {
        *e = scat_element { buf: p.as_ptr() as *mut c_char, len: p.len() };
    }
    let g = cstr("grp1");
    assert_eq!(unsafe { SP_scat_multicast(mbox, FIFO_MESS as i32, g.as_ptr(), 7, &sc) }, 5);
    let f = rx.recv().unwrap();
    assert_eq!(&f[80..], b"abcde");
    assert_eq!(unsafe { SP_multigroup_scat_multicast(mbox, FIFO_MESS as i32, 0, std::ptr::null(), 7, &sc) }, 5);
    let f = rx.recv().unwrap();
    assert_eq!((f.len(), &f[48..]), (53, &b"abcde"[..]));
    assert_eq!(disconnect(mbox), 0);
    assert_eq!(&rx.recv().unwrap()[0..4], &hex("80 00 04 80")[..]);
    h.join().unwrap();
}

#[test]
fn bad_arguments_send_nothing() {
    let (tx, rx) = mpsc::channel();
    let (mbox, h) = open(21011, "bad", move |mut s| {
        // Exactly these frames arrive; anything refused locally never does.
        for _ in 0..6 {
            tx.send(read_frame(&mut s)).unwrap();
        }
        expect_eof(&mut s);
    });
    // Group names for join/leave.
    for g in [&b""[..], &[b'a'; 32][..], b"#priv", b"a b", b"tab\there", &[0xc3, 0xa9][..], b"del\x7f"] {
        assert_eq!(join(mbox, g), ILLEGAL_GROUP, "{g:?}");
        assert_eq!(leave(mbox, g), ILLEGAL_GROUP, "{g:?}");
    }
    assert_eq!(unsafe { SP_join(mbox, std::ptr::null()) }, ILLEGAL_GROUP);
    assert_eq!(join(mbox, &[b'a'; 31]), 0); // frame 1
    assert_eq!(join(mbox, b"$~"), 0); // frame 2

    // Services.
    assert_eq!(multicast(mbox, 0, "g", 0, b"x"), ILLEGAL_SERVICE);
    assert_eq!(multicast(mbox, REG_MEMB_MESS, "g", 0, b"x"), ILLEGAL_SERVICE);
    assert_eq!(multicast(mbox, SELF_DISCARD | DROP_RECV, "g", 0, b"x"), ILLEGAL_SERVICE);
    // Sizes: 144000 bytes of body + group names is the limit.
    let big = vec![7u8; 143_969];
    assert_eq!(multicast(mbox, RELIABLE_MESS, "g", 0, &big), MESSAGE_TOO_LONG);
    assert_eq!(multicast(mbox, RELIABLE_MESS, "g", 0, &big[..143_968]), 143_968); // frame 3

    // Negative lengths, NULL bodies, oversized scatters, negative group counts.
    let g = cstr("g");
    assert_eq!(unsafe { SP_multicast(mbox, 1, g.as_ptr(), 0, -1, b"x".as_ptr() as *const c_char) }, ILLEGAL_MESSAGE);
    assert_eq!(unsafe { SP_multicast(mbox, 1, g.as_ptr(), 0, 5, std::ptr::null()) }, ILLEGAL_MESSAGE);
    assert_eq!(unsafe { SP_multicast(mbox, 1, std::ptr::null(), 0, 1, b"x".as_ptr() as *const c_char) }, ILLEGAL_GROUP);
    let mut sc = empty_scatter();
    sc.num_elements = 101;
    assert_eq!(unsafe { SP_scat_multicast(mbox, 1, g.as_ptr(), 0, &sc) }, ILLEGAL_MESSAGE);
    sc.num_elements = usize::MAX;
    assert_eq!(unsafe { SP_scat_multicast(mbox, 1, g.as_ptr(), 0, &sc) }, ILLEGAL_MESSAGE);
    sc.num_elements = 1;
    sc.elements[0] = scat_element { buf: std::ptr::null_mut(), len: 3 };
    assert_eq!(unsafe { SP_scat_multicast(mbox, 1, g.as_ptr(), 0, &sc) }, ILLEGAL_MESSAGE);
    sc.elements[0] = scat_element { buf: b"x".as_ptr() as *mut c_char, len: usize::MAX };
    assert_eq!(unsafe { SP_scat_multicast(mbox, 1, g.as_ptr(), 0, &sc) }, MESSAGE_TOO_LONG);
    assert_eq!(unsafe { SP_scat_multicast(mbox, 1, g.as_ptr(), 0, std::ptr::null()) }, ILLEGAL_MESSAGE);
    let gs = [[0 as c_char; 32]; 1];
    let m = |n: i32| unsafe { SP_multigroup_multicast(mbox, 1, n, gs.as_ptr(), 0, 0, std::ptr::null()) };
    assert_eq!(m(-1), ILLEGAL_GROUP);
    assert_eq!(m(i32::MIN), ILLEGAL_GROUP);
    assert_eq!(m(i32::MAX), MESSAGE_TOO_LONG);
    assert_eq!(m(4501), MESSAGE_TOO_LONG);
    assert_eq!(unsafe { SP_multigroup_multicast(mbox, 1, 2, std::ptr::null(), 0, 0, std::ptr::null()) }, ILLEGAL_GROUP);
    // More than 100 groups is sent as the original does (the daemon decides).
    let many = vec![[b'x' as c_char; 32]; 101];
    let r = unsafe { SP_multigroup_multicast(mbox, 1, 101, many.as_ptr(), 0, 2, b"hi".as_ptr() as *const c_char) };
    assert_eq!(r, 2); // frame 4
                      // 400 groups: past the 10000-byte header buffer 5.0.1 overflows (>311).
    let lots: Vec<[c_char; 32]> = (0..400)
        .map(|i| {
            let mut g = [0 as c_char; 32];
            g[0] = b'a' as c_char + (i % 26) as c_char;
            g[1] = 1 + (i / 26) as c_char;
            g
        })
        .collect();
    let r = unsafe { SP_multigroup_multicast(mbox, 1, 400, lots.as_ptr(), 0, 1, b"!".as_ptr() as *const c_char) };
    assert_eq!(r, 1); // frame 5
                      // Unknown mailboxes.
    for mb in [-1, 999_999, mbox + 100] {
        assert_eq!(multicast(mb, 1, "g", 0, b"x"), ILLEGAL_SESSION);
        assert_eq!(join(mb, b"g"), ILLEGAL_SESSION);
        assert_eq!(multicast(mb, 1, "g", 0, &big), ILLEGAL_SESSION);
        assert_eq!(disconnect(mb), ILLEGAL_SESSION);
        assert_eq!(poll(mb), ILLEGAL_SESSION);
        kill(mb);
    }
    let f1 = rx.recv().unwrap();
    assert_eq!(
        (spread_wire::endian::clear_endian(f1.0.type_), f1.1[0]),
        (JOIN_MESS, {
            let mut n = [b'a'; 32];
            n[31] = 0;
            n
        })
    );
    assert_eq!(spread_wire::names::name_bytes(&rx.recv().unwrap().1[0]), b"$~");
    let f3 = rx.recv().unwrap();
    assert_eq!((f3.0.data_len, f3.2.len()), (143_968, 143_968));
    let f4 = rx.recv().unwrap();
    assert_eq!((f4.0.num_groups, f4.1.len(), f4.2.as_slice()), (101, 101, &b"hi"[..]));
    assert_eq!(f4.1[100], [b'x'; 32]);
    let f5 = rx.recv().unwrap();
    assert_eq!((f5.0.num_groups, f5.0.data_len, f5.2.as_slice()), (400, 1, &b"!"[..]));
    assert!(f5.1.iter().zip(&lots).all(|(a, b)| a.iter().zip(b).all(|(x, y)| *x == *y as u8)));
    assert_eq!(disconnect(mbox), 0);
    assert_eq!(spread_wire::endian::clear_endian(rx.recv().unwrap().0.type_), KILL_MESS);
    h.join().unwrap();
}

/// A 32-byte C name buffer holding `name`, its NUL, then 0xff to the end:
/// stands for whatever a program's stack or heap holds after the string.
fn dirty(name: &str) -> [c_char; 32] {
    let mut b = [0xffu8 as c_char; 32];
    for (d, s) in b.iter_mut().zip(name.bytes()) {
        *d = s as c_char;
    }
    b[name.len()] = 0;
    b
}

/// Client spec §6 (the original's leak): every 32-byte name field the library
/// sends is the name up to its NUL and then zeros, whatever follows the NUL in
/// the caller's buffer. Covers every sending call; the frames are read on the
/// daemon side of the socket.
#[test]
fn name_fields_are_zero_padded_whatever_the_buffer_holds() {
    let (tx, rx) = mpsc::channel();
    let (mbox, h) = open(21012, "pad", move |mut s| {
        for _ in 0..7 {
            tx.send(read_frame(&mut s)).unwrap();
        }
        expect_eof(&mut s);
    });
    let me = name32("#pad#fake");
    let g1 = dirty("grp1");
    let g2 = dirty("#x#y");
    let body = b"hi";
    let mut sc = empty_scatter();
    sc.num_elements = 1;
    sc.elements[0] = scat_element { buf: body.as_ptr() as *mut c_char, len: body.len() };
    let both = [g1, g2];
    unsafe {
        assert_eq!(SP_join(mbox, g1.as_ptr()), 0);
        assert_eq!(SP_multicast(mbox, AGREED_MESS as i32, g1.as_ptr(), 1, 2, body.as_ptr() as *const c_char), 2);
        assert_eq!(SP_scat_multicast(mbox, AGREED_MESS as i32, g1.as_ptr(), 1, &sc), 2);
        assert_eq!(
            SP_multigroup_multicast(mbox, SAFE_MESS as i32, 2, both.as_ptr(), 1, 2, body.as_ptr() as *const c_char),
            2
        );
        assert_eq!(SP_multigroup_scat_multicast(mbox, SAFE_MESS as i32, 2, both.as_ptr(), 1, &sc), 2);
        assert_eq!(SP_leave(mbox, g1.as_ptr()), 0);
    }
    assert_eq!(disconnect(mbox), 0);
    let want: [&[&str]; 7] =
        [&["grp1"], &["grp1"], &["grp1"], &["grp1", "#x#y"], &["grp1", "#x#y"], &["grp1"], &["#pad#fake"]];
    for (k, groups) in want.iter().enumerate() {
        let (hd, got_groups, _, raw) = rx.recv().unwrap();
        assert_eq!(hd.sender, me, "frame {k}: sender field");
        let exp: Vec<[u8; 32]> = groups.iter().map(|g| name32(g)).collect();
        assert_eq!(got_groups, exp, "frame {k}: group fields");
        assert!(!raw[..48 + 32 * groups.len()].contains(&0xff), "frame {k}: 0xff from the caller's buffer on the wire");
    }
    h.join().unwrap();
}
