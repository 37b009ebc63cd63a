//! The FL C shells themselves: constant answers, argument checks that come
//! before any session lookup, unknown mailboxes, and no crash on NULL where
//! the original would have dereferenced it.
//!
//! Port 24190 (nothing listens there).

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::ptr;

use spread_ffi::fl::*;
use spread_ffi::types::{scat_element, scatter};

const ILLEGAL_SESSION: c_int = -11;
const ILLEGAL_MESSAGE: c_int = -13;
const ILLEGAL_PARAM: c_int = -24;
const ILLEGAL_STATE: c_int = -27;

fn receive(mbox: c_int, max_groups: c_int, max_len: c_int) -> c_int {
    let mut svc = 0x1000_0000; // DONT_BLOCK
    let mut sender = [0 as c_char; 32];
    let mut groups = [[0 as c_char; 32]; 2];
    let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
    let mut body = [0u8; 16];
    // SAFETY: buffers as announced (max_len <= 16, max_groups <= 2 when used).
    unsafe {
        FL_receive(
            mbox,
            &mut svc,
            sender.as_mut_ptr(),
            max_groups,
            &mut ng,
            groups.as_mut_ptr(),
            &mut mt,
            &mut em,
            max_len,
            body.as_mut_ptr() as *mut c_char,
            &mut more,
        )
    }
}

#[test]
fn constants_and_argument_checks() {
    // SAFETY: every call below passes valid pointers or NULL where we accept it.
    unsafe {
        assert_eq!(FL_lib_init(), 0);
        assert_eq!(FL_lib_init(), ILLEGAL_STATE);
        let (mut a, mut b, mut c) = (-1, -1, -1);
        FL_version(&mut a, &mut b, &mut c);
        assert_eq!((a, b, c), (2, 0, 0));
        FL_version(ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        assert_eq!(
            (FL_get_gid_offset_memb_mess(), FL_get_num_vs_offset_memb_mess(), FL_get_vs_set_offset_memb_mess()),
            (0, 12, 16)
        );

        let g = CString::new("grp").unwrap();
        let bad = 987_654;
        assert_eq!(FL_join(bad, g.as_ptr()), ILLEGAL_SESSION);
        assert_eq!(FL_leave(bad, g.as_ptr()), ILLEGAL_SESSION);
        assert_eq!(FL_flush(bad, g.as_ptr()), ILLEGAL_SESSION);
        assert_eq!(FL_join(bad, ptr::null()), ILLEGAL_SESSION);
        assert_eq!(FL_multicast(bad, 4, g.as_ptr(), 0, 2, b"hi".as_ptr() as *const c_char), ILLEGAL_SESSION);
        assert_eq!(FL_unicast(bad, 4, g.as_ptr(), g.as_ptr(), 0, 2, b"hi".as_ptr() as *const c_char), ILLEGAL_SESSION);
        assert_eq!(FL_subgroupcast(bad, 4, g.as_ptr(), 0, ptr::null(), 0, 0, ptr::null()), ILLEGAL_SESSION);
        assert_eq!(FL_scat_multicast(bad, 4, g.as_ptr(), 0, ptr::null()), ILLEGAL_SESSION);
        assert_eq!(FL_more_msgs(bad), ILLEGAL_SESSION);
        assert_eq!(FL_poll(bad), ILLEGAL_SESSION);
        assert_eq!(FL_disconnect(bad), ILLEGAL_SESSION);
        assert_eq!(receive(bad, 2, 16), ILLEGAL_SESSION);

        // checked before the session
        assert_eq!(receive(bad, -1, 16), ILLEGAL_PARAM);
        assert_eq!(receive(bad, 2, -1), ILLEGAL_PARAM);
        let mut s = scatter { num_elements: 101, elements: [scat_element { buf: ptr::null_mut(), len: 0 }; 100] };
        let mut svc = 0;
        let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
        assert_eq!(
            FL_scat_receive(
                bad,
                &mut svc,
                ptr::null_mut(),
                0,
                &mut ng,
                ptr::null_mut(),
                &mut mt,
                &mut em,
                &mut s,
                &mut more
            ),
            ILLEGAL_MESSAGE
        );
        assert_eq!(
            FL_scat_receive(
                bad,
                ptr::null_mut(),
                ptr::null_mut(),
                0,
                &mut ng,
                ptr::null_mut(),
                &mut mt,
                &mut em,
                &mut s,
                &mut more
            ),
            ILLEGAL_PARAM
        );
        s.num_elements = 0;
        assert_eq!(
            FL_scat_receive(
                bad,
                &mut svc,
                ptr::null_mut(),
                0,
                &mut ng,
                ptr::null_mut(),
                &mut mt,
                &mut em,
                &mut s,
                &mut more
            ),
            ILLEGAL_SESSION
        );

        // a failed connect leaves nothing behind
        let d = CString::new("24190@127.0.0.1").unwrap();
        let u = CString::new("nobody").unwrap();
        let mut mbox = -77;
        let mut private = [0 as c_char; 32];
        assert_eq!(FL_connect(d.as_ptr(), u.as_ptr(), 0, &mut mbox, private.as_mut_ptr()), -2);
        assert_eq!(mbox, -77);
    }
}
