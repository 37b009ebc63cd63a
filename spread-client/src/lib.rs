//! Safe Rust client for the Spread 5.0.1 client protocol: the engine behind
//! `libspread` (connect/handshake, sessions, send, receive with the original's
//! short-buffer contract). The C ABI in `libspread-ffi` is a thin shell over it.
//!
//! Results follow the C library: `Ok(..)` or `Err(code)` where `code` is one of
//! the negative `spread_wire::consts` error codes.
//!
//! * [`target`] — `"4803"` / `"4803@host"` parsing (the `%hu%s` rules);
//! * [`auth`] — the process-wide auth method table;
//! * [`mod@connect`] — socket set-up, the handshake, the connect deadline;
//! * [`session`] — the 1024-slot session table, kill/disconnect, poll;
//! * [`send`] — the send path (whole frames under the session send lock);
//! * [`recv`] — the receive path (§2.8 of the client spec);
//! * [`memb`] — membership body helpers over contiguous or scattered bodies;
//! * [`diag`] — the few messages the original prints to stdout.
//!
//! # Where this differs from 5.0.1 on purpose
//!
//! Nothing a conforming daemon or application can observe, except:
//! * §6 item 2 fixed: a `DROP_RECV` receive that truncates the body also
//!   forgets a header saved by an earlier `*_TOO_SHORT` (no desynchronised
//!   stream afterwards);
//! * §6 item 3 fixed: the scatter membership helpers see the scatter as one
//!   contiguous byte string and only fill as many vs-sets as there are;
//! * §6 item 5 fixed: the KILL frame of `SP_disconnect` is zero-padded;
//! * §6 item 12 fixed: negative group counts and lengths, scatters of more
//!   than 100 elements and NULL buffers are refused with an error code
//!   instead of undefined behaviour (see `libspread-ffi`'s `sp` module);
//! * negative mailboxes are unknown (`ILLEGAL_SESSION`); 5.0.1 would match an
//!   unused slot for `-1`;
//! * a killed mailbox's descriptor is closed when the last thread using it
//!   returns (at once in single-threaded use), so its number is never
//!   recycled under a thread still blocked on it;
//! * a foreign-order membership body is converted only within the bytes
//!   actually received (5.0.1 may touch caller memory past `data_len`);
//! * an application that made the mailbox non-blocking waits in `poll(2)`
//!   instead of spinning on `EAGAIN`.
//!
//! # The per-message path
//!
//! A send is one system call and a receive two; 5.0.1 makes two `send`s
//! (header and names, then the body, one per scatter piece) and three or
//! more `recv`s (header, names, body, one per scatter piece):
//!
//! * **Reads never go past the message being received.** Applications
//!   `select`/`poll` the mailbox and call `SP_receive` when it is readable,
//!   and `SP_poll` reports the bytes in the socket: a library that read ahead
//!   would leave messages in its memory with the descriptor not readable,
//!   and those applications would hang. So the header (48 bytes) is one
//!   read, and the rest of the frame — a reject's 4-byte original type, the
//!   names, the body — one more, exactly as long as the header says, into
//!   the caller's buffers with one `recvmsg`, or, when it is at most 2 KB,
//!   with one plain `recv` into a stack buffer and copied out (cheaper in
//!   the kernel than importing an iovec array; the copy of a small message
//!   costs less than that). Only names beyond `max_groups` in `DROP_RECV`
//!   mode are read apart, to be thrown away.
//! * **A frame goes out whole in one call**: the header and names are built
//!   in a stack buffer (up to 16 names; more in one heap buffer), and sent
//!   with the body by one `sendmsg`, or one `send` through a stack buffer
//!   when the frame is at most 2 KB. The whole frame is written under the
//!   session's send lock, so concurrent senders never interleave.
//! * **Nothing is allocated per message** (header block, iovecs and scatter
//!   views live on the stack) and **an uncontended session lock makes no
//!   system call**: a release wakes a waiter only if one is waiting.
//!
//! `make bench` (LIBRARY section) measures it against the original library;
//! `libspread-ffi/tests/sp_hot_path.rs` and `compat-tests/tests/lib_syscalls.rs`
//! hold it to this.

pub mod auth;
pub mod connect;
pub mod diag;
mod io;
pub mod memb;
pub mod recv;
pub mod send;
pub mod session;
pub mod target;

pub use connect::{connect, validate_timeout, Connected, Timeout};
pub use recv::{receive, RecvOutputs};
pub use send::{multicast, SendBody};
pub use session::{disconnect, kill, poll};

/// Hooks for tests of the layers above (not part of the API).
#[doc(hidden)]
pub mod testing {
    use std::sync::atomic::{AtomicBool, Ordering};

    static PANIC_IN_POLL: AtomicBool = AtomicBool::new(false);

    /// Make [`crate::poll`] panic (to exercise the C shell's panic guard).
    pub fn set_panic_in_poll(on: bool) {
        PANIC_IN_POLL.store(on, Ordering::SeqCst);
    }

    /// Pretend `n` more sessions are open (negative: fewer), to reach the
    /// 1024-session quota without 1024 sockets.
    pub fn pretend_sessions(n: isize) {
        crate::session::adjust_count(n);
    }

    pub(crate) fn maybe_panic() {
        if PANIC_IN_POLL.load(Ordering::SeqCst) {
            panic!("test hook: deliberate panic in poll");
        }
    }
}

/// An error code as the C API returns it (negative, see `spread_wire::consts`).
pub type Code = i32;

/// The directory of the daemon's Unix-domain socket (shared with the daemon).
pub use spread_wire::consts::SP_UNIX_SOCKET;

/// One-time library initialisation (`sp_initialize`): ignore SIGPIPE
/// process-wide, as the original does on the first connect or auth call.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting a signal disposition to SIG_IGN has no memory
        // effects; the fork handlers are plain functions that never unwind.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::pthread_atfork(Some(atfork_prepare), Some(atfork_parent), Some(atfork_child));
        }
    });
}

extern "C" fn atfork_prepare() {
    let _ = std::panic::catch_unwind(session::fork_prepare);
}

extern "C" fn atfork_parent() {
    let _ = std::panic::catch_unwind(|| session::fork_release(false));
}

extern "C" fn atfork_child() {
    let _ = std::panic::catch_unwind(|| session::fork_release(true));
}
