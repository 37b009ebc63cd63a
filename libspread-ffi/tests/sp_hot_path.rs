//! The per-message path of the library (issue: libspread's hot path):
//!
//! * once warm, `SP_multicast`, `SP_scat_multicast`, `SP_multigroup_multicast`
//!   (up to 16 groups), `SP_receive` and `SP_scat_receive` allocate nothing,
//!   and neither does a busy `E_handle_events` loop (counted by a global
//!   allocator that counts per thread);
//! * the reads that save system calls (the rest of a frame after its header
//!   in one read, small frames through a stack buffer) still deliver every
//!   frame exactly when the daemon writes it one byte at a time, for bodies
//!   below and above the stack buffer, into one buffer or a scatter;
//! * they never read past the message being received: after each receive the
//!   next frame is still whole in the socket (`SP_poll` = its size).
//!
//! System calls per message are counted on a real daemon by
//! `compat-tests/tests/lib_syscalls.rs`. Ports 21060–21064.

mod sp_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::{mpsc, Mutex};

use sp_common::*;
use spread_ffi::events::*;
use spread_ffi::sp::*;
use spread_ffi::types::*;

// ---------------------------------------------------------------------------
// Allocation counting (this thread only: the fake daemon allocates freely).

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised
// thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// The event loop state is process-global; tests here run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const DATA: u32 = 0x8000_0082; // RELIABLE with the (little-endian) endian marker

/// A fake daemon that answers every frame the client sends with a data frame
/// carrying the same groups and body, written all at once.
fn echo_daemon(port: u16, name: &str) -> (i32, std::thread::JoinHandle<()>) {
    let me = format!("#{name}#fake");
    open(port, name, move |mut s| loop {
        let Ok(raw) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_frame(&mut s))) else { return };
        let (h, groups, body, _) = raw;
        if h.type_ & 0x0001_0000 != 0 {
            // KILL_MESS: the client disconnected.
            return;
        }
        let names: Vec<String> = groups
            .iter()
            .map(|g| String::from_utf8_lossy(&g[..g.iter().position(|&c| c == 0).unwrap_or(32)]).into_owned())
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        if s.write_all(&frame_le(DATA, &me, &refs, 0x8000_0080 | (7 << 8), &body)).is_err() {
            return;
        }
    })
}

struct Bufs {
    sender: [c_char; 32],
    groups: [[c_char; 32]; 20],
    body: Vec<u8>,
}

impl Bufs {
    fn new() -> Bufs {
        Bufs { sender: [0; 32], groups: [[0; 32]; 20], body: vec![0u8; 200_000] }
    }
}

/// One SP_receive into preallocated buffers; returns (ret, service, groups).
fn receive(mbox: i32, b: &mut Bufs) -> (i32, i32, i32) {
    let (mut svc, mut ng, mut mt, mut endian): (service, c_int, int16, c_int) = (0, 0, 0, 0);
    let ret = unsafe {
        SP_receive(
            mbox,
            &mut svc,
            b.sender.as_mut_ptr(),
            20,
            &mut ng,
            b.groups.as_mut_ptr(),
            &mut mt,
            &mut endian,
            b.body.len() as c_int,
            b.body.as_mut_ptr() as *mut c_char,
        )
    };
    (ret, svc, ng)
}

/// One SP_scat_receive into three pieces of `b.body` cut at `cut1` and
/// `cut1 + cut2`; returns (ret, num_groups, mess_type).
fn scat_receive(mbox: i32, b: &mut Bufs, cut1: usize, cut2: usize) -> (i32, i32, i16) {
    let mut rs = scatter { num_elements: 3, elements: [scat_element { buf: std::ptr::null_mut(), len: 0 }; 100] };
    let (a, rest) = b.body.split_at_mut(cut1);
    let (c, d) = rest.split_at_mut(cut2);
    rs.elements[0] = scat_element { buf: a.as_mut_ptr() as *mut c_char, len: a.len() };
    rs.elements[1] = scat_element { buf: c.as_mut_ptr() as *mut c_char, len: c.len() };
    rs.elements[2] = scat_element { buf: d.as_mut_ptr() as *mut c_char, len: d.len() };
    let (mut svc, mut ng, mut mt, mut endian): (service, c_int, int16, c_int) = (0, 0, 0, 0);
    let ret = unsafe {
        SP_scat_receive(
            mbox,
            &mut svc,
            b.sender.as_mut_ptr(),
            20,
            &mut ng,
            b.groups.as_mut_ptr(),
            &mut mt,
            &mut endian,
            &mut rs,
        )
    };
    (ret, ng, mt)
}

#[test]
fn multicast_and_receive_allocate_nothing_once_warm() {
    watchdog();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mbox, h) = echo_daemon(21060, "hp");
    let group = cstr("hotgroup");
    let many: Vec<[c_char; 32]> = (0..16).map(|i| name32(&format!("g{i}")).map(|c| c as c_char)).collect();
    let out = vec![0x41u8; 5000];
    let mut b = Bufs::new();
    let round = |b: &mut Bufs, len: usize| {
        let r = unsafe {
            SP_multicast(mbox, RELIABLE_MESS as service, group.as_ptr(), 1, len as c_int, out.as_ptr() as *const c_char)
        };
        assert_eq!(r, len as i32);
        let (ret, svc, ng) = receive(mbox, b);
        assert_eq!((ret, ng), (len as i32, 1));
        assert_eq!(svc as u32 & RELIABLE_MESS, RELIABLE_MESS);
        // A scatter send and a scatter receive, pieces split unevenly.
        let elems = [
            scat_element { buf: out.as_ptr() as *mut c_char, len: len / 3 },
            scat_element { buf: out.as_ptr() as *mut c_char, len: len - len / 3 },
        ];
        let mut sc = scatter { num_elements: 2, elements: [scat_element { buf: std::ptr::null_mut(), len: 0 }; 100] };
        sc.elements[..2].copy_from_slice(&elems);
        let r = unsafe { SP_scat_multicast(mbox, RELIABLE_MESS as service, group.as_ptr(), 1, &sc) };
        assert_eq!(r, len as i32);
        let (ret, ng, mt) = scat_receive(mbox, b, 7, 1000);
        assert_eq!((ret, ng, mt), (len as i32, 1, 7));
        assert!(b.body[..len].iter().all(|&c| c == 0x41));
        // Sixteen groups, still on the stack.
        let r = unsafe {
            SP_multigroup_multicast(
                mbox,
                RELIABLE_MESS as service,
                16,
                many.as_ptr(),
                1,
                len as c_int,
                out.as_ptr() as *const c_char,
            )
        };
        assert_eq!(r, len as i32);
        let (ret, _, ng) = receive(mbox, b);
        assert_eq!((ret, ng), (len as i32, 16));
    };
    for len in [0, 100, 1000, 5000] {
        round(&mut b, len);
    }
    let before = allocs();
    for i in 0..300 {
        round(&mut b, [0, 100, 1000, 5000][i % 4]);
    }
    let spent = allocs() - before;
    assert_eq!(spent, 0, "allocations in 300 rounds of 6 SP_* calls each");
    assert_eq!(unsafe { SP_disconnect(mbox) }, 0);
    h.join().unwrap();
}

// ---------------------------------------------------------------------------
// The event loop: a busy E_handle_events allocates nothing per round.

struct Loop {
    mbox: i32,
    left: Cell<u32>,
    bufs: std::cell::RefCell<Bufs>,
    out: Vec<u8>,
    group: std::ffi::CString,
}

unsafe extern "C" fn on_read(_fd: c_int, _code: c_int, data: *mut c_void) {
    let l = &*(data as *const Loop);
    let (ret, _, _) = receive(l.mbox, &mut l.bufs.borrow_mut());
    assert_eq!(ret, 100);
    let left = l.left.get() - 1;
    l.left.set(left);
    if left == 0 {
        E_exit_events();
    } else {
        let r =
            SP_multicast(l.mbox, RELIABLE_MESS as service, l.group.as_ptr(), 1, 100, l.out.as_ptr() as *const c_char);
        assert_eq!(r, 100);
    }
}

fn run_loop(l: &Loop, rounds: u32) -> u64 {
    l.left.set(rounds);
    let before = allocs();
    let r = unsafe {
        SP_multicast(l.mbox, RELIABLE_MESS as service, l.group.as_ptr(), 1, 100, l.out.as_ptr() as *const c_char)
    };
    assert_eq!(r, 100);
    unsafe { E_handle_events() };
    assert_eq!(l.left.get(), 0);
    allocs() - before
}

#[test]
fn a_busy_event_loop_allocates_nothing_per_round() {
    watchdog();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mbox, h) = echo_daemon(21061, "ev");
    let l = Box::new(Loop {
        mbox,
        left: Cell::new(0),
        bufs: std::cell::RefCell::new(Bufs::new()),
        out: vec![0x42; 100],
        group: cstr("evgroup"),
    });
    unsafe {
        E_init();
        assert_eq!(E_attach_fd(mbox, READ_FD, Some(on_read), 0, &*l as *const Loop as *mut c_void, HIGH_PRIORITY), 0);
    }
    // Whatever a loop allocates when it starts (the first one more: its wake
    // pipe, first-use state), it is the same for 20 rounds as for 2020 (the
    // slow-event records the loop keeps, as the original does, included).
    run_loop(&l, 20);
    let short = run_loop(&l, 20);
    let long = run_loop(&l, 2020);
    assert_eq!(long, short, "allocations: {short} for 20 rounds, {long} for 2020");
    unsafe {
        E_detach_fd(mbox, READ_FD);
        SP_disconnect(mbox);
    }
    h.join().unwrap();
}

// ---------------------------------------------------------------------------
// Byte-at-a-time frames, and nothing read past the message.

#[test]
fn frames_dribbled_byte_by_byte_arrive_whole_and_the_next_stays_unread() {
    watchdog();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = [0usize, 1, 100, 2000, 2047, 2048, 3000, 70_000];
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let body: Vec<u8> = (0..n).map(|k| (k * 7 + i) as u8).collect();
            let groups: Vec<String> = (0..=(i % 3)).map(|g| format!("grp{g}")).collect();
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            frame_le(DATA, "#src#fake", &refs, 0x8000_0080 | ((i as u32) << 8), &body)
        })
        .collect();
    let marker = frame_le(DATA, "#src#fake", &["mark"], 0x8000_0080, b"marker");
    let (tx, rx) = mpsc::channel::<usize>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (to_send, mark) = (frames.clone(), marker.clone());
    let (mbox, h) = open(21062, "dr", move |mut s| {
        // Frame k is dribbled byte by byte when the client asks for it, then
        // a marker frame is written whole and the client told so.
        while let Ok(k) = rx.recv() {
            let Some(f) = to_send.get(k) else { return };
            for b in f {
                if s.write_all(std::slice::from_ref(b)).is_err() {
                    return;
                }
            }
            s.write_all(&mark).unwrap();
            done_tx.send(()).unwrap();
        }
    });
    let mut b = Bufs::new();
    for (k, &n) in sizes.iter().enumerate() {
        tx.send(k).unwrap();
        let want_body: Vec<u8> = (0..n).map(|j| (j * 7 + k) as u8).collect();
        if k % 2 == 0 {
            let (ret, svc, ng) = receive(mbox, &mut b);
            assert_eq!((ret, ng), (n as i32, (k % 3) as i32 + 1), "frame {k}");
            assert_eq!(svc as u32 & RELIABLE_MESS, RELIABLE_MESS);
        } else {
            // Into a three-piece scatter.
            let (ret, ng, mt) = scat_receive(mbox, &mut b, 3, 2040);
            assert_eq!((ret, ng, mt as usize), (n as i32, (k % 3) as i32 + 1, k), "frame {k}");
        }
        assert!(b.body[..n] == want_body[..], "frame {k} body");
        for g in 0..=(k % 3) {
            let name: Vec<u8> = b.groups[g].iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
            assert_eq!(name, format!("grp{g}").as_bytes(), "frame {k} group {g}");
        }
        // The marker was written whole after frame k: none of it was read.
        done_rx.recv().unwrap();
        assert_eq!(unsafe { SP_poll(mbox) }, marker.len() as i32, "after frame {k}, the marker is whole in the socket");
        let (ret, _, ng) = receive(mbox, &mut b);
        assert_eq!((ret, ng, &b.body[..6]), (6, 1, &b"marker"[..]));
    }
    tx.send(usize::MAX).unwrap();
    unsafe { SP_kill(mbox) };
    h.join().unwrap();
}

// ---------------------------------------------------------------------------
// A frame cut short: the outputs are those of separate reads (5.0.1).

/// The daemon writes the first `cut` bytes of a frame with 3 names and a
/// 100-byte body (or 3000 bytes: past the stack buffer), then closes.
fn cut_frame(port: u16, cut: usize, body_len: usize) -> Rx {
    let body = vec![9u8; body_len];
    let f = frame_le(DATA, "#src#fake", &["a", "b", "c"], 0x8000_0080, &body);
    let (mbox, h) = open(port, "cut", move |mut s| {
        s.write_all(&f[..cut]).unwrap();
    });
    h.join().unwrap();
    let rx = recv(mbox, 0, 5, 5000);
    unsafe { SP_kill(mbox) };
    rx
}

#[test]
fn a_frame_cut_in_its_body_reports_its_groups_and_one_cut_in_its_names_does_not() {
    watchdog();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for body_len in [100, 3000] {
        // Cut inside the body: the names were all read, the count is set.
        let rx = cut_frame(21063, 48 + 96 + 10, body_len);
        assert_eq!((rx.ret, rx.num_groups), (CONNECTION_CLOSED, 3), "body {body_len}");
        // Cut inside the names: the count is left alone.
        let rx = cut_frame(21064, 48 + 40, body_len);
        assert_eq!((rx.ret, rx.num_groups), (CONNECTION_CLOSED, SENTINEL), "body {body_len}");
    }
}
