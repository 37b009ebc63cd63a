//! Socket helpers over raw descriptors: the handshake's deadline-bounded
//! non-blocking loops and the blocking loops used once a session is open.

use std::os::fd::RawFd;
use std::time::Instant;

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn is_retry(e: i32) -> bool {
    e == libc::EINTR || e == libc::EAGAIN || e == libc::EWOULDBLOCK
}

/// Result of waiting for a descriptor.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    Ready,
    TimedOut,
    Error,
}

/// Wait until `fd` is readable/writable or the absolute `deadline` passes
/// (`wait_nointr`). No deadline = wait forever.
pub(crate) fn wait(fd: RawFd, readable: bool, deadline: Option<Instant>) -> Wait {
    // Bounded: each pass either returns or was interrupted by a signal.
    loop {
        let to_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Wait::TimedOut;
                }
                let rem = d - now;
                let ms = rem.as_micros().div_ceil(1000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        let mut p = libc::pollfd { fd, events: if readable { libc::POLLIN } else { libc::POLLOUT }, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, to_ms) };
        match r {
            1 => return Wait::Ready,
            0 => return Wait::TimedOut,
            _ if errno() == libc::EINTR => continue,
            _ => return Wait::Error,
        }
    }
}

fn expired(deadline: Option<Instant>) -> bool {
    matches!(deadline, Some(d) if Instant::now() >= d)
}

/// Send all of `buf` on a non-blocking socket before `deadline`
/// (`send_n_nointr_nb`). `Err(())` on any failure or expiry.
pub(crate) fn send_all_nb(fd: RawFd, mut buf: &[u8], deadline: Option<Instant>) -> Result<(), ()> {
    while !buf.is_empty() {
        if expired(deadline) {
            return Err(());
        }
        // SAFETY: buf is a valid slice.
        let r = unsafe { libc::send(fd, buf.as_ptr() as *const libc::c_void, buf.len(), libc::MSG_NOSIGNAL) };
        if r > 0 {
            buf = &buf[(r as usize).min(buf.len())..];
            continue;
        }
        let e = errno();
        if r < 0 && (e == libc::EAGAIN || e == libc::EWOULDBLOCK) {
            if wait(fd, false, deadline) != Wait::Ready {
                return Err(());
            }
        } else if !(r < 0 && e == libc::EINTR) {
            return Err(());
        }
    }
    Ok(())
}

/// Receive exactly `buf.len()` bytes on a non-blocking socket before
/// `deadline` (`recv_n_nointr_nb`). `Err(n)` = failed after `n` bytes.
pub(crate) fn recv_exact_nb(fd: RawFd, buf: &mut [u8], deadline: Option<Instant>) -> Result<(), usize> {
    let mut got = 0;
    while got < buf.len() {
        if expired(deadline) {
            return Err(got);
        }
        let rest = &mut buf[got..];
        // SAFETY: rest is a valid mutable slice.
        let r = unsafe { libc::recv(fd, rest.as_mut_ptr() as *mut libc::c_void, rest.len(), 0) };
        if r > 0 {
            got += (r as usize).min(rest.len());
            continue;
        }
        let e = errno();
        if r < 0 && (e == libc::EAGAIN || e == libc::EWOULDBLOCK) {
            if wait(fd, true, deadline) != Wait::Ready {
                return Err(got);
            }
        } else if !(r < 0 && e == libc::EINTR) {
            return Err(got);
        }
    }
    Ok(())
}

/// Receive exactly `buf.len()` bytes, blocking (retrying EINTR; on EAGAIN —
/// the application made the fd non-blocking — wait for data instead of
/// spinning). `Err(())` on EOF or error.
pub(crate) fn recv_exact(fd: RawFd, buf: &mut [u8]) -> Result<(), ()> {
    let mut got = 0;
    while got < buf.len() {
        let rest = &mut buf[got..];
        // SAFETY: rest is a valid mutable slice.
        let r = unsafe { libc::recv(fd, rest.as_mut_ptr() as *mut libc::c_void, rest.len(), 0) };
        if r > 0 {
            got += (r as usize).min(rest.len());
            continue;
        }
        if r < 0 && is_retry(errno()) {
            if errno() != libc::EINTR && wait(fd, true, None) == Wait::Error {
                return Err(());
            }
            continue;
        }
        return Err(());
    }
    Ok(())
}

/// Read and throw away `n` bytes (blocking).
pub(crate) fn discard(fd: RawFd, mut n: usize) -> Result<(), ()> {
    let mut scratch = [0u8; 8192];
    while n > 0 {
        let k = n.min(scratch.len());
        recv_exact(fd, &mut scratch[..k])?;
        n -= k;
    }
    Ok(())
}

/// Send every byte of `parts` in order with as few `sendmsg` calls as the
/// kernel allows (one for the whole frame in the common case). Blocking;
/// retries EINTR, waits on EAGAIN. `Err(())` on any other failure.
pub(crate) fn send_vectored(fd: RawFd, parts: &[&[u8]]) -> Result<(), ()> {
    let mut iov: Vec<libc::iovec> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| libc::iovec { iov_base: p.as_ptr() as *mut libc::c_void, iov_len: p.len() })
        .collect();
    let mut first = 0;
    const MAX_IOV: usize = 1024;
    while first < iov.len() {
        let cnt = (iov.len() - first).min(MAX_IOV);
        // SAFETY: zeroed msghdr is valid; iov points at live slices.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov[first..].as_mut_ptr();
        msg.msg_iovlen = cnt as _;
        // SAFETY: msg describes valid buffers.
        let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
        if r < 0 {
            let e = errno();
            if is_retry(e) {
                if e != libc::EINTR && wait(fd, false, None) == Wait::Error {
                    return Err(());
                }
                continue;
            }
            return Err(());
        }
        if r == 0 {
            return Err(());
        }
        let mut sent = r as usize;
        while sent > 0 && first < iov.len() {
            let l = iov[first].iov_len;
            if sent >= l {
                sent -= l;
                first += 1;
            } else {
                // SAFETY: advancing within the same live slice.
                iov[first].iov_base = unsafe { (iov[first].iov_base as *mut u8).add(sent) } as *mut libc::c_void;
                iov[first].iov_len = l - sent;
                sent = 0;
            }
        }
    }
    Ok(())
}
