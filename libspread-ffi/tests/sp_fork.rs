//! fork() while another thread holds a session lock: the child can still use
//! the mailbox (the original's atfork child handler unlocks every session
//! lock; client spec §3.1). Own test binary: it forks.

mod sp_common;

use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sp_common::*;

fn thread_state(tid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

/// Wait for `pid` to exit (bounded); its exit status, or None on timeout.
fn wait_child(pid: i32, limit: Duration) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        let mut st = 0;
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 });
        }
        if t0.elapsed() > limit {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::waitpid(pid, &mut st, 0) };
            return None;
        }
        // Bounded wait between checks.
        unsafe { libc::poll(std::ptr::null_mut(), 0, 10) };
    }
}

#[test]
fn child_can_send_while_a_parent_thread_held_the_send_lock() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (mbox, h) = open(41050, "fk", move |mut s| {
        // Do not read until told: the parent's sender blocks on a full buffer.
        let _ = go_rx.recv();
        let mut b = vec![0u8; 1 << 16];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 {
                break;
            }
        }
    });
    let big = vec![0x42u8; 143_000];
    let (tid_tx, tid_rx) = mpsc::channel();
    let sender = std::thread::spawn(move || {
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        // Bounded: the buffers fill after a few megabytes at most.
        for _ in 0..200 {
            assert_eq!(multicast(mbox, FIFO_MESS, "g", 0, &big), big.len() as i32);
        }
    });
    let tid = tid_rx.recv().unwrap();
    let t0 = Instant::now();
    while thread_state(tid) != Some('S') && t0.elapsed() < IO_TIMEOUT {
        std::thread::yield_now();
    }
    assert_eq!(thread_state(tid), Some('S'), "sender should be blocked in send");

    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // Child: the lock held by the parent's sender thread must not block us.
        let ok = multicast(mbox, FIFO_MESS, "g", 1, b"from-child") == 10 && poll(mbox) >= 0;
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    go_tx.send(()).unwrap();
    assert_eq!(wait_child(pid, IO_TIMEOUT), Some(0));
    sender.join().unwrap();
    kill(mbox);
    h.join().unwrap();
}
