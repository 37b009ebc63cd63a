//! fork() while another thread holds a session lock: the child can still use
//! the mailbox (the original's atfork child handler unlocks every session
//! lock; client spec §3.1). Own test binary: it forks.

mod sp_common;

use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sp_common::*;

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
    let (mbox, h) = open(21050, "fk", move |mut s| {
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
    assert!(wait_in_syscall(tid, &SEND_SYSCALLS), "sender should be blocked in send");

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

#[test]
fn child_can_receive_while_a_parent_thread_is_blocked_receiving() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (mbox, h) = open(21051, "fr", move |mut s| {
        let _ = go_rx.recv();
        // Two 48-byte self-leave frames, each in one write: one for the
        // parent's blocked reader, one for the child (either order).
        let f = frame_le(0x8000_0280, "grp", &[], 0x8000_0080, b"");
        std::io::Write::write_all(&mut s, &f).unwrap();
        std::io::Write::write_all(&mut s, &f).unwrap();
        let mut b = [0u8; 256];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 {
                break;
            }
        }
    });
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        recv(mbox, 0, 4, 64).ret
    });
    let tid = tid_rx.recv().unwrap();
    assert!(wait_in_syscall(tid, &RECV_SYSCALLS), "reader should be blocked in recv");

    let mut pipe = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::write(pipe[1], b"r".as_ptr() as *const libc::c_void, 1) };
        let ok = recv(mbox, 0, 4, 64).ret == 0;
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    unsafe { libc::close(pipe[1]) };
    let mut b = [0u8; 1];
    assert_eq!(unsafe { libc::read(pipe[0], b.as_mut_ptr() as *mut libc::c_void, 1) }, 1);
    unsafe { libc::close(pipe[0]) };
    go_tx.send(()).unwrap();
    assert_eq!(wait_child(pid, IO_TIMEOUT), Some(0));
    assert_eq!(reader.join().unwrap(), 0);
    kill(mbox);
    h.join().unwrap();
}
