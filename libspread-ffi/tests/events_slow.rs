//! The exported-but-undeclared slow-event helpers: `E_time_events` keeps the
//! slowest events (at most `Slow_events_max`, slowest first, and only events
//! slower than the slowest-kept last one get in), `E_print_slow_events`
//! prints them on C stdout, `E_lookup_function_name` names a function.
//! Also: invalid arguments print the original's diagnostics on C stdout.
//! Both parts redirect fd 1, and the test harness writes its own result
//! lines on fd 1 from another thread as soon as any test of this binary
//! finishes, so the parts run one after the other inside a single test.

use spread_ffi::events::*;
use spread_ffi::types::sp_time;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;

fn secs(s: i64) -> sp_time {
    sp_time { sec: s as _, usec: 0 }
}

unsafe extern "C" fn some_handler(_fd: c_int, _code: c_int, _data: *mut c_void) {}

fn fd_ev(fd: c_int) -> fd_event {
    fd_event { fd, fd_type: READ_FD, func: Some(some_handler), code: 7, data: std::ptr::null_mut(), active: 1 }
}

/// Runs `f` with fd 1 redirected into a pipe and returns what was written.
fn capture_stdout(f: impl FnOnce()) -> String {
    unsafe {
        let mut p = [-1; 2];
        assert_eq!(libc::pipe(p.as_mut_ptr()), 0);
        libc::fflush(std::ptr::null_mut());
        let saved = libc::dup(1);
        libc::dup2(p[1], 1);
        f();
        libc::fflush(std::ptr::null_mut());
        libc::dup2(saved, 1);
        libc::close(saved);
        libc::close(p[1]);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..1000 {
            let n = libc::read(p[0], buf.as_mut_ptr() as *mut c_void, buf.len());
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        libc::close(p[0]);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[test]
fn slow_events_and_diagnostics_on_c_stdout() {
    slow_event_table();
    invalid_arguments_print_the_original_diagnostics();
}

fn slow_event_table() {
    assert_eq!(Slow_events_max.load(Ordering::SeqCst), 5);
    assert_eq!(Slow_events_active.load(Ordering::SeqCst), 0);
    unsafe {
        let zero = secs(0);
        E_time_events(zero, secs(2), &fd_ev(2), std::ptr::null());
        assert_eq!(Slow_events_active.load(Ordering::SeqCst), 1);
        // not slower than the slowest-kept last entry: ignored despite room
        E_time_events(zero, secs(1), &fd_ev(1), std::ptr::null());
        E_time_events(zero, secs(2), &fd_ev(22), std::ptr::null());
        assert_eq!(Slow_events_active.load(Ordering::SeqCst), 1);
        // slower ones go in front
        E_time_events(zero, secs(5), &fd_ev(5), std::ptr::null());
        E_time_events(zero, secs(3), &fd_ev(3), std::ptr::null());
        assert_eq!(Slow_events_active.load(Ordering::SeqCst), 3);
        // both or neither record pointer: ignored
        E_time_events(zero, secs(9), std::ptr::null(), std::ptr::null());
        assert_eq!(Slow_events_active.load(Ordering::SeqCst), 3);
        for s in 6..=9 {
            E_time_events(zero, secs(s), &fd_ev(s as c_int), std::ptr::null());
        }
        assert_eq!(Slow_events_active.load(Ordering::SeqCst), 5, "capped at Slow_events_max");
    }
    let out = capture_stdout(|| unsafe { E_print_slow_events() });
    let fds: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split("fd event: fd (").nth(1))
        .map(|r| r.split(')').next().unwrap_or(""))
        .collect();
    assert_eq!(fds, vec!["9", "8", "7", "6", "5"], "{out}");
    assert!(out.contains("took 9.000000 sec:fd event: fd (9) type (0)"), "{out}");
    assert!(out.contains("code (7)") && out.contains("active (1)"), "{out}");

    // name lookup: an exported libc function resolves by name; the buffer is
    // always terminated, even when too short
    let mut name = [0 as c_char; 64];
    unsafe { E_lookup_function_name(libc::getpid as *mut c_void, name.as_mut_ptr(), 64) };
    let s = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    assert!(s.ends_with("getpid"), "{s}"); // glibc may report an alias such as __getpid
    let mut short = [1 as c_char; 4];
    unsafe { E_lookup_function_name(libc::getpid as *mut c_void, short.as_mut_ptr(), 4) };
    let first3: Vec<c_char> = s.bytes().take(3).map(|b| b as c_char).collect();
    assert_eq!(&short[..3], &first3[..]);
    assert_eq!(short[3], 0);
    unsafe { E_lookup_function_name(std::ptr::null_mut(), name.as_mut_ptr(), 64) };
    let s = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    assert!(s.starts_with("LOOKUP_FAIL_0x"), "{s}");
}

fn invalid_arguments_print_the_original_diagnostics() {
    let null = std::ptr::null_mut();
    let mut codes = Vec::new();
    let out = capture_stdout(|| unsafe {
        codes.push(E_attach_fd(3, READ_FD, Some(some_handler), 0, null, 5));
        codes.push(E_attach_fd(3, 4, Some(some_handler), 0, null, 1));
        codes.push(E_attach_fd(-2, READ_FD, Some(some_handler), 0, null, 1));
        codes.push(E_detach_fd(3, 9));
        codes.push(E_detach_fd_priority(3, 9, 0));
        codes.push(E_activate_fd(3, 9));
        codes.push(E_deactivate_fd(3, -1));
        codes.push(E_set_active_threshold(-1));
        codes.push(E_num_active(3));
    });
    assert_eq!(codes, vec![-1; 9]);
    assert_eq!(
        out,
        "E_attach_fd: invalid priority 5 for fd 3 with fd_type 0\n\
         E_attach_fd: invalid fd_type 4 for fd 3 with priority 1\n\
         E_attach_fd: invalid fd -2 (max 1024) with fd_type 0 with priority 1\n\
         E_detach_fd: invalid fd_type 9 for fd 3\n\
         E_detach_fd: invalid fd_type 9 for fd 3\n\
         E_activate_fd: invalid fd_type 9 for fd 3\n\
         E_deactivate_fd: invalid fd_type -1 for fd 3\n\
         E_set_active_threshold: invalid priority -1\n\
         E_num_active: invalid priority 3\n"
    );
}
