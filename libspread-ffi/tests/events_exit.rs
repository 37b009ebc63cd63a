//! Leaving `E_handle_events` from outside the loop: `E_exit_events_async_safe`
//! called from a signal handler that interrupts a blocked loop, and from
//! another thread while the loop is blocked.
//!
//! Each test blocks the loop with nothing to do but a far-away safety timer,
//! tells a helper thread (from a timer callback, i.e. once the loop really
//! runs) to request the exit, and checks the loop came back promptly.

use spread_ffi::events::*;
use spread_ffi::types::sp_time;
use std::os::raw::{c_int, c_void};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
static READY_TX: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
static SAFETY_FIRED: Mutex<bool> = Mutex::new(false);

fn ms(n: i64) -> sp_time {
    sp_time { sec: (n / 1000) as _, usec: ((n % 1000) * 1000) as _ }
}

unsafe extern "C" fn safety(_code: c_int, _data: *mut c_void) {
    *SAFETY_FIRED.lock().unwrap() = true;
    E_exit_events();
}

/// Runs inside the loop: tells the helper the loop is up.
unsafe extern "C" fn announce(_code: c_int, _data: *mut c_void) {
    if let Some(tx) = READY_TX.lock().unwrap().take() {
        let _ = tx.send(());
    }
}

extern "C" fn on_signal(_sig: c_int) {
    unsafe { E_exit_events_async_safe() };
}

/// Blocks in the loop until `request` (run on a helper thread once the loop
/// is running) makes it leave; returns how long the loop ran.
fn run_until(request: impl FnOnce(libc::pthread_t) + Send + 'static) -> Duration {
    let (tx, rx) = mpsc::channel();
    *READY_TX.lock().unwrap() = Some(tx);
    *SAFETY_FIRED.lock().unwrap() = false;
    let me = unsafe { libc::pthread_self() };
    let helper = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
            request(me);
        }
    });
    let start = Instant::now();
    unsafe {
        assert_eq!(E_init(), 0);
        E_queue(Some(safety), 0, std::ptr::null_mut(), ms(8000));
        E_queue(Some(announce), 0, std::ptr::null_mut(), ms(0));
        E_handle_events();
    }
    let took = start.elapsed();
    helper.join().unwrap();
    assert!(!*SAFETY_FIRED.lock().unwrap(), "loop only left through the safety timer");
    took
}

#[test]
fn signal_handler_exit_interrupts_a_blocked_loop() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let took = run_until(|loop_thread| unsafe {
        assert_eq!(libc::pthread_kill(loop_thread, libc::SIGUSR1), 0);
    });
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn async_safe_exit_from_another_thread_wakes_the_loop() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let took = run_until(|_| unsafe { E_exit_events_async_safe() });
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn plain_exit_from_another_thread_wakes_the_loop() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let took = run_until(|_| unsafe { E_exit_events() });
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
