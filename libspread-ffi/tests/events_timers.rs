//! Timers of the `E_*` event loop: ordering, replacement of identical
//! (func, code, data) entries, `E_in_queue`/`E_dequeue`, and leaving
//! `E_handle_events` from inside a timer.
//!
//! The event state is process-global, so every test takes `SERIAL` and
//! starts with `E_init()`. Each loop has a safety timer that ends it.

use spread_ffi::events::*;
use spread_ffi::types::sp_time;
use std::os::raw::{c_int, c_void};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
static LOG: Mutex<Vec<(c_int, Instant)>> = Mutex::new(Vec::new());

fn setup() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    LOG.lock().unwrap().clear();
    assert_eq!(unsafe { E_init() }, 0);
    g
}

fn ms(n: i64) -> sp_time {
    sp_time { sec: (n / 1000) as _, usec: ((n % 1000) * 1000) as _ }
}

fn codes() -> Vec<c_int> {
    LOG.lock().unwrap().iter().map(|e| e.0).collect()
}

unsafe extern "C" fn record(code: c_int, _data: *mut c_void) {
    LOG.lock().unwrap().push((code, Instant::now()));
}

unsafe extern "C" fn record_other(code: c_int, _data: *mut c_void) {
    LOG.lock().unwrap().push((1000 + code, Instant::now()));
}

unsafe extern "C" fn stop(_code: c_int, _data: *mut c_void) {
    LOG.lock().unwrap().push((-1, Instant::now()));
    E_exit_events();
}

/// Runs the loop with a safety stop after `limit_ms` and checks it returned
/// in a bounded time.
fn run(limit_ms: i64) {
    unsafe {
        E_queue(Some(stop), 0, std::ptr::null_mut(), ms(limit_ms));
        let start = Instant::now();
        E_handle_events();
        assert!(start.elapsed() < Duration::from_secs(10), "loop ran {:?}", start.elapsed());
    }
}

#[test]
fn timers_fire_in_due_order_not_queue_order() {
    let _g = setup();
    let start = Instant::now();
    unsafe {
        E_queue(Some(record), 30, std::ptr::null_mut(), ms(30));
        E_queue(Some(record), 10, std::ptr::null_mut(), ms(10));
        E_queue(Some(record), 20, std::ptr::null_mut(), ms(20));
        E_queue(Some(record), 0, std::ptr::null_mut(), ms(0));
    }
    run(80);
    assert_eq!(codes(), vec![0, 10, 20, 30, -1]);
    // each fired no earlier than its delay
    for (code, at) in LOG.lock().unwrap().iter().filter(|e| e.0 > 0) {
        assert!(*at - start >= Duration::from_millis(*code as u64 - 1), "code {code} early");
    }
}

#[test]
fn equal_delays_keep_queue_order() {
    let _g = setup();
    unsafe {
        for code in 1..=5 {
            E_queue(Some(record), code, std::ptr::null_mut(), ms(5));
        }
    }
    run(40);
    assert_eq!(codes(), vec![1, 2, 3, 4, 5, -1]);
}

#[test]
fn identical_entry_is_replaced_and_distinct_ones_are_not() {
    let _g = setup();
    let mut a = 0u8;
    let pa = &mut a as *mut u8 as *mut c_void;
    let start = Instant::now();
    unsafe {
        E_queue(Some(record), 7, std::ptr::null_mut(), ms(5));
        E_queue(Some(record), 7, std::ptr::null_mut(), ms(60)); // replaces the first
        E_queue(Some(record), 8, std::ptr::null_mut(), ms(10)); // other code
        E_queue(Some(record), 7, pa, ms(15)); // other data
        E_queue(Some(record_other), 7, std::ptr::null_mut(), ms(20)); // other func
    }
    run(120);
    assert_eq!(codes(), vec![8, 7, 1007, 7, -1]);
    let log = LOG.lock().unwrap();
    // the replaced (code 7, null data) entry ran at its *new* time
    assert!(log[3].1 - start >= Duration::from_millis(59));
}

#[test]
fn in_queue_and_dequeue() {
    let _g = setup();
    let null = std::ptr::null_mut();
    unsafe {
        assert_eq!(E_in_queue(Some(record), 1, null), 0);
        assert_eq!(E_dequeue(Some(record), 1, null), -1);
        E_queue(Some(record), 1, null, ms(10));
        E_queue(Some(record), 2, null, ms(20));
        E_queue(Some(record), 3, null, ms(30));
        assert_eq!(E_in_queue(Some(record), 1, null), 1);
        assert_eq!(E_in_queue(Some(record), 2, null), 1);
        assert_eq!(E_in_queue(Some(record_other), 2, null), 0);
        assert_eq!(E_dequeue(Some(record), 2, null), 0);
        assert_eq!(E_in_queue(Some(record), 2, null), 0);
        assert_eq!(E_dequeue(Some(record), 2, null), -1);
        // head and tail removal
        assert_eq!(E_dequeue(Some(record), 1, null), 0);
        assert_eq!(E_dequeue(Some(record), 3, null), 0);
        assert_eq!(E_in_queue(Some(record), 3, null), 0);
        E_queue(Some(record), 4, null, ms(10));
    }
    run(50);
    assert_eq!(codes(), vec![4, -1]);
    // a fired timer is no longer queued
    assert_eq!(unsafe { E_in_queue(Some(record), 4, std::ptr::null_mut()) }, 0);
}

#[test]
fn e_init_clears_the_queue() {
    let _g = setup();
    unsafe {
        E_queue(Some(record), 1, std::ptr::null_mut(), ms(1));
        assert_eq!(E_init(), 0);
        assert_eq!(E_in_queue(Some(record), 1, std::ptr::null_mut()), 0);
    }
    run(20);
    assert_eq!(codes(), vec![-1]);
}

static REQUEUE_LEFT: Mutex<i32> = Mutex::new(0);

unsafe extern "C" fn requeue(code: c_int, data: *mut c_void) {
    record(code, data);
    let mut left = REQUEUE_LEFT.lock().unwrap();
    *left -= 1;
    if *left > 0 {
        // re-entrant: queue ourselves again from inside the callback
        E_queue(Some(requeue), code + 1, data, ms(2));
    } else {
        E_exit_events();
    }
}

#[test]
fn a_timer_can_requeue_itself_and_exit_the_loop() {
    let _g = setup();
    *REQUEUE_LEFT.lock().unwrap() = 5;
    unsafe {
        // safety stop far away; the chain must end the loop first
        E_queue(Some(stop), 0, std::ptr::null_mut(), ms(5000));
        E_queue(Some(requeue), 1, std::ptr::null_mut(), ms(0));
        E_handle_events();
        assert_eq!(codes(), vec![1, 2, 3, 4, 5]);
        // the safety timer is still pending: the loop left through E_exit_events
        assert_eq!(E_in_queue(Some(stop), 0, std::ptr::null_mut()), 1);
    }
}

unsafe extern "C" fn exit_then_more(code: c_int, data: *mut c_void) {
    record(code, data);
    E_exit_events();
}

#[test]
fn exit_inside_a_timer_skips_the_remaining_due_timers() {
    let _g = setup();
    let null = std::ptr::null_mut();
    unsafe {
        E_queue(Some(exit_then_more), 1, null, ms(0));
        E_queue(Some(record), 2, null, ms(0));
        E_queue(Some(stop), 0, null, ms(5000));
        E_handle_events();
        assert_eq!(codes(), vec![1]);
        assert_eq!(E_in_queue(Some(record), 2, null), 1);
        // the next call resets the exit request and carries on
        E_queue(Some(stop), 0, null, ms(10));
        E_handle_events();
        assert_eq!(codes(), vec![1, 2, -1]);
    }
}
