//! The process-wide session table (client spec §1.4, §3): 1024 slots, the
//! mailbox is the socket descriptor, slot search starts at `fd & 1023` and
//! probes linearly.
//!
//! Each session lives in an `Arc`. Looking a mailbox up clones the `Arc`, so
//! a thread blocked in a receive keeps the session (and its descriptor) alive
//! even if another thread kills the mailbox meanwhile: the descriptor is
//! closed when the last user lets go, never under a blocked reader's feet, and
//! its number cannot be reused while someone might still read from it.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use spread_wire::consts::*;
use spread_wire::header::Header;
use spread_wire::names::Name32;

use crate::Code;

const ACTIVE: u8 = 1;
const ERROR: u8 = 2;

/// Receive-side state guarded by the session's receive lock.
#[derive(Debug, Default)]
pub(crate) struct RecvState {
    /// Header kept after a `*_TOO_SHORT` result; the frame is still unread.
    pub saved: Option<Header>,
}

/// Bumped in a forked child: locks taken before the fork by threads that do
/// not exist in the child count as free there (the original's child handler
/// unlocks every session lock; a connection may be used after `fork` by
/// either process, never by both).
static FORK_GEN: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Default)]
struct Holder {
    held: bool,
    gen: u64,
    /// Threads blocked in [`SessLock::lock`]: a release wakes one only if
    /// there is one, so an uncontended lock makes no system call (std's
    /// `Mutex` takes no futex when free; `Condvar::notify_one` always does).
    waiters: u32,
}

/// A per-session lock (send or receive side) held across blocking I/O.
#[derive(Debug, Default)]
pub(crate) struct SessLock {
    state: Mutex<Holder>,
    cv: Condvar,
}

pub(crate) struct SessGuard<'a>(&'a SessLock);

impl SessLock {
    pub(crate) fn lock(&self) -> SessGuard<'_> {
        let mut g = lock(&self.state);
        // Bounded by the holders releasing; every release with a waiter
        // notifies.
        loop {
            let gen = FORK_GEN.load(Ordering::Acquire);
            if !g.held || g.gen != gen {
                g.held = true;
                g.gen = gen;
                return SessGuard(self);
            }
            g.waiters += 1;
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            g.waiters -= 1;
        }
    }
}

impl Drop for SessGuard<'_> {
    fn drop(&mut self) {
        let mut g = lock(&self.0.state);
        g.held = false;
        let wake = g.waiters > 0;
        drop(g);
        if wake {
            self.0.cv.notify_one();
        }
    }
}

/// One open session.
#[derive(Debug)]
pub struct Session {
    fd: OwnedFd,
    mbox: i32,
    private_group: Name32,
    state: AtomicU8,
    killed: AtomicBool,
    pub(crate) send_lock: SessLock,
    pub(crate) recv_lock: SessLock,
    /// Only touched while `recv_lock` is held.
    pub(crate) recv: Mutex<RecvState>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub fn mbox(&self) -> i32 {
        self.mbox
    }
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    /// The private group name, NUL-padded.
    pub fn private_group(&self) -> &Name32 {
        &self.private_group
    }
    pub fn is_active(&self) -> bool {
        self.state.load(Ordering::Acquire) == ACTIVE
    }
    /// Still in the table (not killed)?
    pub fn is_current(&self) -> bool {
        !self.killed.load(Ordering::Acquire)
    }
    /// A send or receive failed: every later I/O call reports
    /// `NET_ERROR_ON_SESSION`.
    pub(crate) fn set_error(&self) {
        self.state.store(ERROR, Ordering::Release);
    }
}

struct Table {
    slots: Vec<Option<Arc<Session>>>,
    count: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    let mut g = lock(&TABLE);
    let t = g.get_or_insert_with(|| Table { slots: vec![None; MAX_LIB_SESSIONS], count: 0 });
    f(t)
}

fn base_slot(mbox: i32) -> usize {
    (mbox as u32 as usize) & (MAX_LIB_SESSIONS - 1)
}

fn find(t: &Table, mbox: i32) -> Option<usize> {
    if mbox < 0 {
        return None;
    }
    let base = base_slot(mbox);
    (0..MAX_LIB_SESSIONS)
        .map(|k| (base + k) % MAX_LIB_SESSIONS)
        .find(|&i| matches!(&t.slots[i], Some(s) if s.mbox == mbox))
}

thread_local! {
    static FORK_HELD: RefCell<Option<MutexGuard<'static, Option<Table>>>> = const { RefCell::new(None) };
}

/// `pthread_atfork` prepare: hold the table lock across the fork so the
/// child never inherits it locked by a thread it does not have.
pub(crate) fn fork_prepare() {
    let g = lock(&TABLE);
    FORK_HELD.with(|h| *h.borrow_mut() = Some(g));
}

/// `pthread_atfork` parent/child: release it again; in the child, also free
/// every session lock held by threads that did not survive the fork.
pub(crate) fn fork_release(child: bool) {
    if child {
        FORK_GEN.fetch_add(1, Ordering::AcqRel);
    }
    FORK_HELD.with(|h| drop(h.borrow_mut().take()));
}

/// Look a mailbox up (`SP_get_session`).
pub fn lookup(mbox: i32) -> Option<Arc<Session>> {
    with_table(|t| find(t, mbox).and_then(|i| t.slots[i].clone()))
}

/// Look up and require an ACTIVE session: `ILLEGAL_SESSION` /
/// `NET_ERROR_ON_SESSION` otherwise.
pub(crate) fn lookup_active(mbox: i32) -> Result<Arc<Session>, Code> {
    let s = lookup(mbox).ok_or(ILLEGAL_SESSION)?;
    if !s.is_active() {
        return Err(NET_ERROR_ON_SESSION);
    }
    Ok(s)
}

/// 0 if `mbox` is an ACTIVE session, else `ILLEGAL_SESSION` /
/// `NET_ERROR_ON_SESSION`.
pub fn check_active(mbox: i32) -> Code {
    match lookup_active(mbox) {
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// Register a freshly connected socket (end of `SP_connect`).
/// `REJECT_QUOTA` when 1024 sessions are open (the socket is closed).
pub(crate) fn register(fd: OwnedFd, private_group: Name32) -> Result<i32, Code> {
    let mbox = fd.as_raw_fd();
    with_table(|t| {
        if t.count >= MAX_LIB_SESSIONS {
            return Err(REJECT_QUOTA);
        }
        let base = base_slot(mbox);
        let Some(i) = (0..MAX_LIB_SESSIONS).map(|k| (base + k) % MAX_LIB_SESSIONS).find(|&i| t.slots[i].is_none())
        else {
            return Err(SP_BUG);
        };
        t.slots[i] = Some(Arc::new(Session {
            fd,
            mbox,
            private_group,
            state: AtomicU8::new(ACTIVE),
            killed: AtomicBool::new(false),
            send_lock: SessLock::default(),
            recv_lock: SessLock::default(),
            recv: Mutex::new(RecvState::default()),
        }));
        t.count += 1;
        Ok(mbox)
    })
}

pub(crate) fn adjust_count(n: isize) {
    with_table(|t| t.count = (t.count as isize + n).max(0) as usize);
}

/// Number of open sessions.
pub fn count() -> usize {
    with_table(|t| t.count)
}

/// `SP_kill`: forget the session; its socket is closed (at once unless
/// another thread is inside a call on it, then when that call returns).
/// Nothing is sent. Unknown mailboxes are ignored.
pub fn kill(mbox: i32) {
    let victim = with_table(|t| {
        let i = find(t, mbox)?;
        let s = t.slots[i].take()?;
        t.count -= 1;
        s.killed.store(true, Ordering::Release);
        Some(s)
    });
    // Dropped here, outside the table lock; closes the fd if we were the
    // last holder.
    drop(victim);
}

/// `SP_disconnect`: send a KILL frame (result ignored; nothing is sent if the
/// session is in ERROR state), then [`kill`]. Returns 0 or `ILLEGAL_SESSION`.
pub fn disconnect(mbox: i32) -> Code {
    let Some(s) = lookup(mbox) else { return ILLEGAL_SESSION };
    let group = *s.private_group();
    drop(s);
    let _ = crate::send::send_frame(mbox, KILL_MESS, &[group], 0, &crate::send::SendBody::Empty);
    kill(mbox);
    0
}

/// `SP_poll`: bytes waiting in the socket receive buffer.
pub fn poll(mbox: i32) -> Code {
    crate::testing::maybe_panic();
    let Some(s) = lookup(mbox) else { return ILLEGAL_SESSION };
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(s.fd(), libc::FIONREAD, &mut n) };
    if r < 0 {
        ILLEGAL_SESSION
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// A descriptor numbered at least `min` (an open /dev/null).
    fn fd_at_least(min: i32) -> Option<OwnedFd> {
        let f = std::fs::File::open("/dev/null").ok()?;
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own.
        let n = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
        // SAFETY: n is a fresh descriptor.
        (n >= 0).then(|| unsafe { OwnedFd::from_raw_fd(n) })
    }

    #[test]
    fn colliding_slots_probe_linearly_and_lookups_find_each() {
        // Two descriptors with the same `fd & 1023` (needs RLIMIT_NOFILE > 2100).
        let (Some(a), Some(b)) = (fd_at_least(1000), fd_at_least(2048)) else { return };
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let Some(b) = (if fa & 1023 == fb & 1023 { Some(b) } else { fd_at_least(2048 + (fa & 1023)) }) else { return };
        let fb = b.as_raw_fd();
        if fa & 1023 != fb & 1023 {
            return;
        }
        let before = count();
        assert_eq!(register(a, spread_wire::names::name32(b"#a#x")), Ok(fa));
        assert_eq!(register(b, spread_wire::names::name32(b"#b#x")), Ok(fb));
        assert_eq!(count(), before + 2);
        assert_eq!(lookup(fa).unwrap().private_group(), &spread_wire::names::name32(b"#a#x"));
        assert_eq!(lookup(fb).unwrap().private_group(), &spread_wire::names::name32(b"#b#x"));
        kill(fa);
        assert!(lookup(fa).is_none());
        assert!(lookup(fb).is_some(), "the probed entry survives its neighbour's removal");
        kill(fb);
        assert_eq!(count(), before);
        // SAFETY: probing that the descriptors were closed by kill.
        assert_eq!(unsafe { libc::fcntl(fb, libc::F_GETFD) }, -1);
        assert!(lookup(-1).is_none());
    }
}
