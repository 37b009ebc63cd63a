//! Descriptor handlers of the `E_*` event loop on real socketpairs:
//! attach/detach/activate return codes, firing, priorities and the active
//! threshold, round-robin among LOW handlers, leaving the loop from inside a
//! handler, and re-entrant changes made by handlers.
//!
//! The event state is process-global: every test takes `SERIAL` and starts
//! with `E_init()`; every loop has a safety timer that ends it.

use spread_ffi::events::*;
use spread_ffi::types::sp_time;
use std::os::raw::{c_int, c_void};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
/// (fd, code) of every handler call, in order.
static LOG: Mutex<Vec<(c_int, c_int)>> = Mutex::new(Vec::new());
/// Stop the loop once the log has this many entries (0 = never).
static STOP_AFTER: Mutex<usize> = Mutex::new(0);

fn setup() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    LOG.lock().unwrap().clear();
    *STOP_AFTER.lock().unwrap() = 0;
    assert_eq!(unsafe { E_init() }, 0);
    g
}

fn ms(n: i64) -> sp_time {
    sp_time { sec: (n / 1000) as _, usec: ((n % 1000) * 1000) as _ }
}

/// A connected Unix stream pair; closed on drop.
struct Pair {
    a: c_int,
    b: c_int,
}

impl Pair {
    fn new() -> Pair {
        let mut fds = [-1; 2];
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
        assert_eq!(r, 0);
        for fd in fds {
            unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        }
        Pair { a: fds[0], b: fds[1] }
    }
    /// Makes `b` readable with `n` bytes.
    fn feed(&self, n: usize) {
        let buf = vec![b'x'; n];
        let w = unsafe { libc::write(self.a, buf.as_ptr() as *const c_void, n) };
        assert_eq!(w, n as isize);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        unsafe {
            libc::close(self.a);
            libc::close(self.b);
        }
    }
}

fn log() -> Vec<(c_int, c_int)> {
    LOG.lock().unwrap().clone()
}

fn note(fd: c_int, code: c_int) {
    let mut l = LOG.lock().unwrap();
    l.push((fd, code));
    let stop = *STOP_AFTER.lock().unwrap();
    if stop != 0 && l.len() >= stop {
        unsafe { E_exit_events() };
    }
}

/// Reads one byte and logs the call.
unsafe extern "C" fn read_one(fd: c_int, code: c_int, _data: *mut c_void) {
    let mut b = 0u8;
    libc::read(fd, &mut b as *mut u8 as *mut c_void, 1);
    note(fd, code);
}

/// Reads everything available and logs the call.
unsafe extern "C" fn read_all(fd: c_int, code: c_int, _data: *mut c_void) {
    let mut buf = [0u8; 256];
    for _ in 0..100 {
        if libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len()) <= 0 {
            break;
        }
    }
    note(fd, code);
}

unsafe extern "C" fn stop(_code: c_int, _data: *mut c_void) {
    note(-1, -1);
    E_exit_events();
}

fn run(limit_ms: i64) {
    unsafe {
        E_queue(Some(stop), 0, std::ptr::null_mut(), ms(limit_ms));
        let start = Instant::now();
        E_handle_events();
        assert!(start.elapsed() < Duration::from_secs(10));
        E_dequeue(Some(stop), 0, std::ptr::null_mut());
    }
}

#[test]
fn attach_return_codes() {
    let _g = setup();
    let null = std::ptr::null_mut();
    unsafe {
        assert_eq!(E_attach_fd(5, READ_FD, Some(read_one), 0, null, 3), -1, "priority too high");
        assert_eq!(E_attach_fd(5, READ_FD, Some(read_one), 0, null, -1), -1, "negative priority");
        assert_eq!(E_attach_fd(5, 3, Some(read_one), 0, null, LOW_PRIORITY), -1, "bad fd type");
        assert_eq!(E_attach_fd(5, -1, Some(read_one), 0, null, LOW_PRIORITY), -1, "bad fd type");
        assert_eq!(E_attach_fd(-1, READ_FD, Some(read_one), 0, null, LOW_PRIORITY), -1, "negative fd");
        assert_eq!(E_attach_fd(5, READ_FD, Some(read_one), 0, null, LOW_PRIORITY), 0);
        assert_eq!(E_attach_fd(5, READ_FD, Some(read_all), 9, null, LOW_PRIORITY), 1, "replaced");
        assert_eq!(E_attach_fd(5, WRITE_FD, Some(read_one), 0, null, LOW_PRIORITY), 0, "other type");
        assert_eq!(E_attach_fd(5, READ_FD, Some(read_one), 0, null, HIGH_PRIORITY), 0, "other priority");
        // descriptors above select's FD_SETSIZE are accepted (poll-based)
        assert_eq!(E_attach_fd(5000, READ_FD, Some(read_one), 0, null, MEDIUM_PRIORITY), 0);
        assert_eq!(E_num_active(LOW_PRIORITY), 2);
        assert_eq!(E_num_active(MEDIUM_PRIORITY), 1);
        assert_eq!(E_num_active(HIGH_PRIORITY), 1);
        assert_eq!(E_num_active(3), -1);
        assert_eq!(E_num_active(-1), -1);
    }
}

#[test]
fn at_most_max_fd_events_per_priority() {
    let _g = setup();
    let null = std::ptr::null_mut();
    unsafe {
        for fd in 0..MAX_FD_EVENTS as c_int {
            assert_eq!(E_attach_fd(10_000 + fd, READ_FD, Some(read_one), 0, null, MEDIUM_PRIORITY), 0);
        }
        assert_eq!(E_attach_fd(99_999, READ_FD, Some(read_one), 0, null, MEDIUM_PRIORITY), -1);
        // replacing an existing one still works at the limit
        assert_eq!(E_attach_fd(10_000, READ_FD, Some(read_all), 1, null, MEDIUM_PRIORITY), 1);
        // other priorities have their own room
        assert_eq!(E_attach_fd(99_999, READ_FD, Some(read_one), 0, null, HIGH_PRIORITY), 0);
        assert_eq!(E_num_active(MEDIUM_PRIORITY), MAX_FD_EVENTS as c_int);
        assert_eq!(E_detach_fd(10_005, READ_FD), 0);
        assert_eq!(E_attach_fd(99_999, READ_FD, Some(read_one), 0, null, MEDIUM_PRIORITY), 0);
    }
}

#[test]
fn detach_activate_deactivate_codes_and_counts() {
    let _g = setup();
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(7, READ_FD, Some(read_one), 0, null, LOW_PRIORITY);
        E_attach_fd(7, READ_FD, Some(read_one), 0, null, HIGH_PRIORITY);
        E_attach_fd(8, READ_FD, Some(read_one), 0, null, HIGH_PRIORITY);
        assert_eq!(E_deactivate_fd(7, READ_FD), 0);
        assert_eq!(E_num_active(LOW_PRIORITY), 0, "deactivated at every priority");
        assert_eq!(E_num_active(HIGH_PRIORITY), 1);
        assert_eq!(E_deactivate_fd(7, READ_FD), 0, "idempotent");
        assert_eq!(E_num_active(HIGH_PRIORITY), 1);
        assert_eq!(E_deactivate_fd(7, WRITE_FD), -1);
        assert_eq!(E_deactivate_fd(7, 9), -1);
        assert_eq!(E_activate_fd(7, READ_FD), 0);
        assert_eq!(E_num_active(LOW_PRIORITY), 1);
        assert_eq!(E_num_active(HIGH_PRIORITY), 2);
        assert_eq!(E_activate_fd(9, READ_FD), -1);
        assert_eq!(E_activate_fd(7, -2), -1);
        // re-attaching a deactivated handler activates it again
        E_deactivate_fd(8, READ_FD);
        assert_eq!(E_num_active(HIGH_PRIORITY), 1);
        assert_eq!(E_attach_fd(8, READ_FD, Some(read_one), 0, null, HIGH_PRIORITY), 1);
        assert_eq!(E_num_active(HIGH_PRIORITY), 2);

        assert_eq!(E_detach_fd_priority(7, READ_FD, LOW_PRIORITY), 0);
        assert_eq!(E_detach_fd_priority(7, READ_FD, LOW_PRIORITY), -1);
        assert_eq!(E_detach_fd_priority(7, READ_FD, 3), -1);
        assert_eq!(E_detach_fd_priority(7, 3, HIGH_PRIORITY), -1);
        assert_eq!(E_num_active(LOW_PRIORITY), 0);
        assert_eq!(E_detach_fd(7, READ_FD), 0, "still at HIGH");
        assert_eq!(E_detach_fd(7, READ_FD), -1);
        assert_eq!(E_detach_fd(8, 5), -1);
        assert_eq!(E_num_active(HIGH_PRIORITY), 1);

        assert_eq!(E_set_active_threshold(MEDIUM_PRIORITY), MEDIUM_PRIORITY);
        assert_eq!(E_set_active_threshold(MEDIUM_PRIORITY), MEDIUM_PRIORITY);
        assert_eq!(E_set_active_threshold(3), -1);
        assert_eq!(E_set_active_threshold(-1), -1);
        assert_eq!(E_init(), 0);
        assert_eq!(E_num_active(HIGH_PRIORITY), 0);
    }
}

#[test]
fn a_readable_socket_runs_its_handler_with_its_code_and_data() {
    let _g = setup();
    static SEEN: Mutex<Vec<(c_int, c_int, usize)>> = Mutex::new(Vec::new());
    unsafe extern "C" fn h(fd: c_int, code: c_int, data: *mut c_void) {
        let mut b = [0u8; 16];
        libc::read(fd, b.as_mut_ptr() as *mut c_void, b.len());
        SEEN.lock().unwrap().push((fd, code, data as usize));
        E_exit_events();
    }
    SEEN.lock().unwrap().clear();
    let p = Pair::new();
    let mut cookie = 0u64;
    let data = &mut cookie as *mut u64 as *mut c_void;
    unsafe {
        assert_eq!(E_attach_fd(p.b, READ_FD, Some(h), 42, data, LOW_PRIORITY), 0);
        E_queue(Some(stop), 0, std::ptr::null_mut(), ms(5000));
        // nothing readable yet: the handler must not run before the feed
        p.feed(3);
        let start = Instant::now();
        E_handle_events();
        assert!(start.elapsed() < Duration::from_secs(4));
    }
    assert_eq!(*SEEN.lock().unwrap(), vec![(p.b, 42, data as usize)]);
}

#[test]
fn idle_socket_does_not_fire_and_write_readiness_does() {
    let _g = setup();
    let p = Pair::new();
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(p.b, READ_FD, Some(read_one), 1, null, HIGH_PRIORITY);
        E_attach_fd(p.a, WRITE_FD, Some(read_all), 2, null, MEDIUM_PRIORITY);
        *STOP_AFTER.lock().unwrap() = 3;
    }
    run(3000);
    // the writable end fires (MEDIUM, nothing at HIGH is ready), the idle
    // reader never does
    assert_eq!(log(), vec![(p.a, 2), (p.a, 2), (p.a, 2)]);
}

#[test]
fn high_runs_before_medium_and_one_low_per_round() {
    let _g = setup();
    let (h, m, l) = (Pair::new(), Pair::new(), Pair::new());
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(l.b, READ_FD, Some(read_all), 0, null, LOW_PRIORITY);
        E_attach_fd(m.b, READ_FD, Some(read_all), 1, null, MEDIUM_PRIORITY);
        E_attach_fd(h.b, READ_FD, Some(read_all), 2, null, HIGH_PRIORITY);
    }
    h.feed(1);
    m.feed(1);
    l.feed(1);
    *STOP_AFTER.lock().unwrap() = 3;
    run(3000);
    // round 1: the HIGH level (MEDIUM waits) plus one LOW; round 2: MEDIUM
    assert_eq!(log(), vec![(h.b, 2), (l.b, 0), (m.b, 1)]);
}

#[test]
fn every_ready_handler_of_the_top_level_runs_in_one_round() {
    let _g = setup();
    let (h1, h2, m) = (Pair::new(), Pair::new(), Pair::new());
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(h1.b, READ_FD, Some(read_all), 21, null, HIGH_PRIORITY);
        E_attach_fd(m.b, READ_FD, Some(read_all), 1, null, MEDIUM_PRIORITY);
        E_attach_fd(h2.b, READ_FD, Some(read_all), 22, null, HIGH_PRIORITY);
    }
    h1.feed(1);
    h2.feed(1);
    m.feed(1);
    *STOP_AFTER.lock().unwrap() = 3;
    run(3000);
    assert_eq!(log(), vec![(h1.b, 21), (h2.b, 22), (m.b, 1)]);
}

#[test]
fn low_handlers_take_turns() {
    let _g = setup();
    let (x, y) = (Pair::new(), Pair::new());
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(x.b, READ_FD, Some(read_one), 1, null, LOW_PRIORITY);
        E_attach_fd(y.b, READ_FD, Some(read_one), 2, null, LOW_PRIORITY);
    }
    x.feed(3);
    y.feed(3);
    *STOP_AFTER.lock().unwrap() = 6;
    run(3000);
    let codes: Vec<c_int> = log().iter().map(|e| e.1).collect();
    assert_eq!(codes.len(), 6, "{codes:?}");
    for w in codes.windows(2) {
        assert_ne!(w[0], w[1], "LOW handlers must alternate: {codes:?}");
    }
}

#[test]
fn threshold_hides_lower_priorities() {
    let _g = setup();
    let (m, l) = (Pair::new(), Pair::new());
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(l.b, READ_FD, Some(read_all), 0, null, LOW_PRIORITY);
        E_attach_fd(m.b, READ_FD, Some(read_all), 1, null, MEDIUM_PRIORITY);
        assert_eq!(E_set_active_threshold(MEDIUM_PRIORITY), MEDIUM_PRIORITY);
    }
    l.feed(1);
    m.feed(1);
    run(100);
    assert_eq!(log(), vec![(m.b, 1), (-1, -1)], "LOW must stay silent");

    // lowering the threshold lets the pending LOW input through
    unsafe { assert_eq!(E_set_active_threshold(LOW_PRIORITY), LOW_PRIORITY) };
    LOG.lock().unwrap().clear();
    *STOP_AFTER.lock().unwrap() = 1;
    run(3000);
    assert_eq!(log(), vec![(l.b, 0)]);

    // HIGH threshold hides MEDIUM too
    unsafe { E_set_active_threshold(HIGH_PRIORITY) };
    m.feed(1);
    LOG.lock().unwrap().clear();
    *STOP_AFTER.lock().unwrap() = 0;
    run(100);
    assert_eq!(log(), vec![(-1, -1)]);
}

#[test]
fn deactivated_handler_is_silent_until_activated() {
    let _g = setup();
    let p = Pair::new();
    unsafe {
        E_attach_fd(p.b, READ_FD, Some(read_all), 5, std::ptr::null_mut(), HIGH_PRIORITY);
        assert_eq!(E_deactivate_fd(p.b, READ_FD), 0);
    }
    p.feed(1);
    run(100);
    assert_eq!(log(), vec![(-1, -1)]);
    unsafe { assert_eq!(E_activate_fd(p.b, READ_FD), 0) };
    LOG.lock().unwrap().clear();
    *STOP_AFTER.lock().unwrap() = 1;
    run(3000);
    assert_eq!(log(), vec![(p.b, 5)]);
}

unsafe extern "C" fn read_and_exit(fd: c_int, code: c_int, data: *mut c_void) {
    read_all(fd, code, data);
    E_exit_events();
}

#[test]
fn exit_from_a_handler_skips_the_rest_of_the_round() {
    let _g = setup();
    let (a, b) = (Pair::new(), Pair::new());
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(a.b, READ_FD, Some(read_and_exit), 1, null, HIGH_PRIORITY);
        E_attach_fd(b.b, READ_FD, Some(read_all), 2, null, HIGH_PRIORITY);
        E_queue(Some(stop), 0, null, ms(5000));
    }
    a.feed(1);
    b.feed(1);
    unsafe { E_handle_events() };
    assert_eq!(log(), vec![(a.b, 1)]);
    // the next loop serves the other one
    *STOP_AFTER.lock().unwrap() = 2;
    unsafe { E_handle_events() };
    assert_eq!(log(), vec![(a.b, 1), (b.b, 2)]);
    unsafe { E_dequeue(Some(stop), 0, null) };
}

static SWAP_TO: Mutex<c_int> = Mutex::new(-1);

/// Detaches itself, attaches another descriptor and queues a timer.
unsafe extern "C" fn swap_handler(fd: c_int, code: c_int, data: *mut c_void) {
    read_all(fd, code, data);
    assert_eq!(E_detach_fd(fd, READ_FD), 0);
    let next = *SWAP_TO.lock().unwrap();
    assert_eq!(E_attach_fd(next, READ_FD, Some(read_and_exit), 77, data, HIGH_PRIORITY), 0);
    E_queue(Some(stop), 1, data, ms(4000));
}

#[test]
fn handlers_may_change_the_tables_reentrantly() {
    let _g = setup();
    let (a, b) = (Pair::new(), Pair::new());
    *SWAP_TO.lock().unwrap() = b.b;
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(a.b, READ_FD, Some(swap_handler), 1, null, HIGH_PRIORITY);
        E_queue(Some(stop), 0, null, ms(5000));
    }
    a.feed(1);
    b.feed(1);
    a.feed(1); // a stays readable, but it is detached by then
    unsafe {
        E_handle_events();
        assert_eq!(log(), vec![(a.b, 1), (b.b, 77)]);
        assert_eq!(E_in_queue(Some(stop), 1, null), 1);
        assert_eq!(E_num_active(HIGH_PRIORITY), 1);
        E_dequeue(Some(stop), 0, null);
        E_dequeue(Some(stop), 1, null);
    }
}

#[test]
fn timers_wait_while_high_priority_input_keeps_coming_at_start() {
    // The original runs no timer before the first round in which no HIGH or
    // MEDIUM handler ran; afterwards timers and handlers interleave.
    let _g = setup();
    let p = Pair::new();
    let null = std::ptr::null_mut();
    unsafe {
        E_attach_fd(p.b, READ_FD, Some(read_one), 1, null, HIGH_PRIORITY);
        E_queue(Some(stop), 9, null, ms(0)); // due at once
    }
    p.feed(2);
    unsafe { E_handle_events() };
    assert_eq!(log(), vec![(p.b, 1), (p.b, 1), (-1, -1)]);
}
