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
    let mut r = ReadList::new(fd);
    r.push(buf)?;
    r.finish()
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

/// The most buffers one vectored call takes: a header block, the 4-byte
/// original type of a reject, the group names and a 100-piece scatter.
pub(crate) const MAX_PARTS: usize = spread_wire::consts::MAX_CLIENT_SCATTER_ELEMENTS + 3;

const NO_IOV: libc::iovec = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };

/// Advance `iov[*first..]` past `n` transferred bytes.
fn advance(iov: &mut [libc::iovec], first: &mut usize, mut n: usize) {
    while n > 0 && *first < iov.len() {
        let l = iov[*first].iov_len;
        if n >= l {
            n -= l;
            *first += 1;
        } else {
            // SAFETY: advancing within the same live buffer.
            iov[*first].iov_base = unsafe { (iov[*first].iov_base as *mut u8).add(n) } as *mut libc::c_void;
            iov[*first].iov_len = l - n;
            n = 0;
        }
    }
}

/// Frames (or the part of a frame after its header) up to this many bytes
/// are gathered into one stack buffer and moved with a plain `send`/`recv`:
/// cheaper in the kernel than importing an iovec array, and the copy of a
/// small message costs less than the import it saves.
const COALESCE: usize = 2048;

/// One `send`/`recv` (single buffer) or `sendmsg`/`recvmsg` over `iov`.
///
/// # Safety
/// `iov` must describe live buffers, writable ones when `write` is false.
unsafe fn io_once(fd: RawFd, iov: &mut [libc::iovec], write: bool) -> isize {
    if let [one] = iov {
        return if write {
            libc::send(fd, one.iov_base, one.iov_len, libc::MSG_NOSIGNAL)
        } else {
            libc::recv(fd, one.iov_base, one.iov_len, 0)
        };
    }
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    if write {
        libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
    } else {
        libc::recvmsg(fd, &mut msg, 0)
    }
}

/// Move every byte of `iov` (blocking: EINTR retried, EAGAIN waited on).
/// `Err(n)` on EOF, a zero-byte send, or any other failure, after `n` bytes
/// were moved.
///
/// # Safety
/// As [`io_once`].
unsafe fn transfer(fd: RawFd, iov: &mut [libc::iovec], write: bool) -> Result<(), usize> {
    let mut first = 0;
    let mut moved = 0;
    while first < iov.len() {
        let r = io_once(fd, &mut iov[first..], write);
        if r > 0 {
            moved += r as usize;
            advance(iov, &mut first, r as usize);
            continue;
        }
        if r < 0 && is_retry(errno()) {
            if errno() != libc::EINTR && wait(fd, !write, None) == Wait::Error {
                return Err(moved);
            }
            continue;
        }
        return Err(moved);
    }
    Ok(())
}

fn total_len(iov: &[libc::iovec]) -> usize {
    iov.iter().map(|v| v.iov_len).sum()
}

/// Send every byte of `parts` in order with one system call in the common
/// case, without allocating. At most [`MAX_PARTS`] parts (`Err(())`
/// beyond). Blocking; retries EINTR, waits on EAGAIN. `Err(())` on any other
/// failure.
pub(crate) fn send_vectored(fd: RawFd, parts: &[&[u8]]) -> Result<(), ()> {
    if parts.len() > MAX_PARTS {
        return Err(());
    }
    let mut iov = [NO_IOV; MAX_PARTS];
    let mut cnt = 0;
    for p in parts.iter().filter(|p| !p.is_empty()) {
        iov[cnt] = libc::iovec { iov_base: p.as_ptr() as *mut libc::c_void, iov_len: p.len() };
        cnt += 1;
    }
    let total = total_len(&iov[..cnt]);
    if cnt > 1 && total <= COALESCE {
        let mut flat = std::mem::MaybeUninit::<[u8; COALESCE]>::uninit();
        let base = flat.as_mut_ptr() as *mut u8;
        let mut at = 0;
        for p in parts {
            // SAFETY: `at + p.len() <= total <= COALESCE`; disjoint buffers.
            unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), base.add(at), p.len()) };
            at += p.len();
        }
        let mut one = [libc::iovec { iov_base: base as *mut libc::c_void, iov_len: total }];
        // SAFETY: `one` describes the live stack buffer.
        return unsafe { transfer(fd, &mut one, true) }.map_err(|_| ());
    }
    // SAFETY: iov points at the live slices of `parts`.
    unsafe { transfer(fd, &mut iov[..cnt], true) }.map_err(|_| ())
}

/// Buffers to fill from the socket in order, exactly, with one system call
/// when the socket holds them all. Never reads past the last buffer pushed.
/// Up to [`MAX_PARTS`] buffers are gathered per read; a push beyond that
/// reads the ones gathered first.
pub(crate) struct ReadList<'a> {
    fd: RawFd,
    iov: [libc::iovec; MAX_PARTS],
    n: usize,
    done: usize,
    _bufs: std::marker::PhantomData<&'a mut [u8]>,
}

impl<'a> ReadList<'a> {
    pub(crate) fn new(fd: RawFd) -> Self {
        ReadList { fd, iov: [NO_IOV; MAX_PARTS], n: 0, done: 0, _bufs: std::marker::PhantomData }
    }

    /// Add `buf` (empty buffers are skipped).
    pub(crate) fn push(&mut self, buf: &'a mut [u8]) -> Result<(), ()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.n == MAX_PARTS {
            self.finish()?;
        }
        self.iov[self.n] = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        self.n += 1;
        Ok(())
    }

    /// Fill every buffer pushed so far (blocking; EINTR retried, EAGAIN
    /// waited on). `Err(())` on EOF or error.
    pub(crate) fn finish(&mut self) -> Result<(), ()> {
        let iov = &mut self.iov[..std::mem::take(&mut self.n)];
        let total = total_len(iov);
        let r = if iov.len() > 1 && total <= COALESCE {
            let mut flat = std::mem::MaybeUninit::<[u8; COALESCE]>::uninit();
            let base = flat.as_mut_ptr() as *mut u8;
            let mut one = [libc::iovec { iov_base: base as *mut libc::c_void, iov_len: total }];
            // SAFETY: `one` describes the live stack buffer.
            let r = unsafe { transfer(self.fd, &mut one, false) };
            // What arrived goes out to the caller's buffers, all of it or,
            // after a failure, the part received (as separate reads would
            // have left it).
            let mut left = match r {
                Ok(()) => total,
                Err(n) => n,
            };
            let mut at = 0;
            for v in iov.iter() {
                let k = v.iov_len.min(left);
                // SAFETY: the first `at + k <= left` bytes of the stack
                // buffer were written by the kernel; each iovec is a live,
                // writable buffer borrowed for 'a, disjoint from it.
                unsafe { std::ptr::copy_nonoverlapping(base.add(at), v.iov_base as *mut u8, k) };
                at += k;
                left -= k;
            }
            r
        } else {
            // SAFETY: iov points at live, writable buffers borrowed for 'a.
            unsafe { transfer(self.fd, iov, false) }
        };
        match r {
            Ok(()) => {
                self.done += total;
                Ok(())
            }
            Err(n) => {
                self.done += n;
                Err(())
            }
        }
    }

    /// Bytes read into the buffers so far (after a failure: up to it).
    pub(crate) fn done(&self) -> usize {
        self.done
    }
}
