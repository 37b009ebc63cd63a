//! `SP_connect` / `SP_connect_timeout` (client spec §1.5, §2.3, §3.3).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use spread_wire::consts::*;
use spread_wire::handshake::{encode_auth_choice, encode_connect_request, AUTH_CHOICE_LEN};

use crate::io::{self, errno, Wait};
use crate::target::{self, Target};
use crate::Code;

/// A relative timeout as `sp_time` carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeout {
    pub sec: i64,
    pub usec: i64,
}

/// Check a timeout and turn it into an absolute monotonic deadline.
/// `ILLEGAL_TIME` for mixed signs or `|usec| >= 1e6`; `{0,0}` = no deadline;
/// a negative timeout gives a deadline that has already passed.
pub fn validate_timeout(t: Timeout) -> Result<Option<Instant>, Code> {
    if (t.sec < 0 && t.usec > 0) || (t.sec > 0 && t.usec < 0) || t.usec <= -1_000_000 || t.usec >= 1_000_000 {
        return Err(ILLEGAL_TIME);
    }
    if t.sec == 0 && t.usec == 0 {
        return Ok(None);
    }
    let now = Instant::now();
    if t.sec < 0 || t.usec < 0 {
        return Ok(Some(now));
    }
    let d = Duration::from_secs(t.sec as u64) + Duration::from_micros(t.usec as u64);
    // A deadline beyond what Instant can hold is as good as none.
    Ok(now.checked_add(d))
}

/// A successful connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    pub mbox: i32,
    /// The private group name the daemon assigned (at most 31 bytes).
    pub private_group: Vec<u8>,
}

fn strerror_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string().split(" (os error").next().unwrap_or("").to_string()
}

fn new_socket(family: libc::c_int) -> Result<OwnedFd, Code> {
    // SAFETY: plain socket(2); the result is owned below.
    let s = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
    if s < 0 {
        return Err(COULD_NOT_CONNECT);
    }
    // SAFETY: s is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(s) })
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: passes a pointer to a live int and its size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
    let mut v: libc::c_int = 0;
    let mut l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: passes a pointer to a live int and its size.
    unsafe { libc::getsockopt(fd, level, name, &mut v as *mut _ as *mut libc::c_void, &mut l) };
    v
}

/// Grow SO_SNDBUF/SO_RCVBUF in 5 KiB steps from 10 KiB to 200 KiB, stopping
/// at the first refusal (`set_large_socket_buffers`).
fn grow_buffers(fd: RawFd) {
    for k in (10..=200).step_by(5) {
        let want = 1024 * k;
        if !setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, want) {
            break;
        }
        if !setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, want) {
            break;
        }
        if getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF) < want {
            break;
        }
        if getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF) < want {
            break;
        }
    }
}

fn set_nonblocking(fd: RawFd, on: bool) -> bool {
    let mut v: libc::c_int = on as libc::c_int;
    // SAFETY: FIONBIO reads one int.
    unsafe { libc::ioctl(fd, libc::FIONBIO, &mut v) != -1 }
}

/// Storage for any socket address we connect to.
struct Addr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

fn unix_addr(path: &str) -> Result<Addr, Code> {
    // SAFETY: all-zero is a valid sockaddr_storage / sockaddr_un.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_un.
    let un = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_un) };
    un.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let p = path.as_bytes();
    if p.len() >= un.sun_path.len() {
        return Err(COULD_NOT_CONNECT);
    }
    for (d, &c) in un.sun_path.iter_mut().zip(p) {
        *d = c as libc::c_char;
    }
    Ok(Addr { storage, len: std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t })
}

/// getaddrinfo with the original's hints; the first IPv4 or IPv6 result.
fn resolve(host: &[u8], port: u16) -> Result<Addr, Code> {
    let Ok(c) = CString::new(host) else { return Err(ILLEGAL_SPREAD) };
    // SAFETY: zeroed addrinfo is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_protocol = libc::IPPROTO_TCP;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out pointer.
    let r = unsafe { libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if r != 0 || res.is_null() {
        if !res.is_null() {
            // SAFETY: res came from getaddrinfo.
            unsafe { libc::freeaddrinfo(res) };
        }
        return Err(if r == libc::EAI_NONAME { ILLEGAL_SPREAD } else { COULD_NOT_CONNECT });
    }
    let mut found = None;
    let mut cur = res;
    // Bounded by the length of the list getaddrinfo returned.
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getaddrinfo returned.
        let ai = unsafe { &*cur };
        cur = ai.ai_next;
        if ai.ai_addr.is_null() {
            continue;
        }
        // SAFETY: zeroed storage, then a copy of at most its size.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: ai_addr points at a sockaddr of at least sa_family.
        let fam = unsafe { (*ai.ai_addr).sa_family } as libc::c_int;
        let len = match fam {
            libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
            libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
            _ => continue,
        };
        // SAFETY: for these families ai_addr holds `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(ai.ai_addr as *const u8, &mut storage as *mut _ as *mut u8, len) };
        // sin_port and sin6_port sit at the same offset.
        // SAFETY: storage holds a sockaddr_in/sockaddr_in6.
        unsafe { (*(&mut storage as *mut _ as *mut libc::sockaddr_in)).sin_port = port.to_be() };
        found = Some(Addr { storage, len: len as libc::socklen_t });
        break;
    }
    // SAFETY: res came from getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    found.ok_or(COULD_NOT_CONNECT)
}

/// Non-blocking connect bounded by the deadline (`connect_nointr`). A
/// timeout is *not* an error here (the first handshake send then fails).
fn connect_nb(fd: RawFd, a: &Addr, deadline: Option<Instant>) -> Result<(), ()> {
    // SAFETY: a.storage holds a valid address of length a.len.
    let r = unsafe { libc::connect(fd, &a.storage as *const _ as *const libc::sockaddr, a.len) };
    if r == 0 {
        return Ok(());
    }
    let e = errno();
    if !(e == libc::EINPROGRESS || e == libc::EINTR || e == libc::EAGAIN || e == libc::EWOULDBLOCK) {
        return Err(());
    }
    match io::wait(fd, false, deadline) {
        Wait::Ready => {
            if getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) != 0 {
                Err(())
            } else {
                Ok(())
            }
        }
        Wait::TimedOut => Ok(()),
        Wait::Error => Err(()),
    }
}

/// Connect to a daemon and run the handshake (`SP_connect_timeout_low`).
///
/// * `spread_name`: `None`/empty = `"4803"`; `"<port>"` = Unix socket,
///   `"<port>@<host>"` = TCP;
/// * `private_name`: `None`/empty = let the daemon choose; truncated to 10;
/// * `deadline`: from [`validate_timeout`]; bounds connect and handshake I/O.
pub fn connect(
    spread_name: Option<&[u8]>,
    private_name: Option<&[u8]>,
    priority: i32,
    group_membership: bool,
    deadline: Option<Instant>,
) -> Result<Connected, Code> {
    crate::init();
    let (sock, addr) = match target::parse(spread_name)? {
        Target::Unix { path, .. } => {
            let addr = unix_addr(&path)?;
            (new_socket(libc::AF_UNIX)?, addr)
        }
        Target::Tcp { port, host } => {
            let addr = resolve(&host, port)?;
            let s = new_socket(addr.storage.ss_family as libc::c_int)?;
            let fd = s.as_raw_fd();
            if !setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1) {
                crate::diag::print(&format!(
                    "SP_connect: setting TCP_NODELAY failed with error: {}\n",
                    strerror_text(errno())
                ));
            }
            if !setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1) {
                crate::diag::print(&format!(
                    "SP_connect: setting SO_KEEPALIVE failed with error: {}\n",
                    strerror_text(errno())
                ));
            }
            (s, addr)
        }
    };
    let fd = sock.as_raw_fd();
    grow_buffers(fd);
    if !set_nonblocking(fd, true) {
        return Err(COULD_NOT_CONNECT);
    }
    if connect_nb(fd, &addr, deadline).is_err() {
        return Err(COULD_NOT_CONNECT);
    }

    // C1: the connect request, one send.
    let name = private_name.map(|n| &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())]).unwrap_or(b"");
    let req = encode_connect_request(group_membership, priority, name);
    io::send_all_nb(fd, &req, deadline).map_err(|_| CONNECTION_CLOSED)?;

    // C2: allowed methods, or a reject byte.
    let mut b = [0u8; 1];
    io::recv_exact_nb(fd, &mut b, deadline).map_err(|_| CONNECTION_CLOSED)?;
    let list_len = b[0] as i8;
    if list_len < 0 {
        return Err(list_len as Code);
    }
    if list_len as usize > AUTH_CHOICE_LEN {
        return Err(CONNECTION_CLOSED);
    }
    let mut list = vec![0u8; list_len as usize];
    io::recv_exact_nb(fd, &mut list, deadline).map_err(|_| CONNECTION_CLOSED)?;

    // C3: our methods must all be allowed; then send the choice.
    let methods = crate::auth::methods();
    if !methods.iter().all(|m| crate::auth::allowed(&m.name, &list)) {
        return Err(REJECT_AUTH);
    }
    let names: Vec<&[u8]> = methods.iter().map(|m| &m.name[..]).collect();
    let choice = encode_auth_choice(&names);
    io::send_all_nb(fd, &choice, deadline).map_err(|_| CONNECTION_CLOSED)?;

    // C4: every callback runs, in order; any failure rejects.
    let mut failed = false;
    for m in &methods {
        if !(m.authenticate)(fd) {
            failed = true;
        }
    }
    if failed {
        return Err(REJECT_AUTH);
    }

    // C5: the verdict.
    let mut acc = [0u8; 5];
    if let Err(got) = io::recv_exact_nb(fd, &mut acc, deadline) {
        if got >= 1 && acc[0] as i8 as Code != ACCEPT_SESSION {
            return Err(acc[0] as i8 as Code);
        }
        return Err(CONNECTION_CLOSED);
    }
    if acc[0] as i8 as Code != ACCEPT_SESSION {
        return Err(acc[0] as i8 as Code);
    }
    let (v1, v2, v3, len) = (acc[1] as i8 as i32, acc[2] as i8 as i32, acc[3] as i8 as i32, acc[4] as i8 as i32);
    if v1 < 0 || v2 < 0 || v3 < 0 || len < 0 || len >= MAX_GROUP_NAME as i32 {
        crate::diag::print(&format!("SP_connect: illegal values received! {v1}.{v2}.{v3}; {len}\n"));
        return Err(CONNECTION_CLOSED);
    }
    if v1 < 3 {
        crate::diag::print(&format!("SP_connect: old daemon version {v1}.{v2}.{v3} not supported\n"));
        return Err(REJECT_VERSION);
    }
    if priority > 0 && v1 == 3 && v2 < 8 {
        crate::diag::print(&format!(
            "SP_connect: old spread version {v1}.{v2}.{v3} does not support priority other than 0\n"
        ));
        return Err(REJECT_VERSION);
    }
    let mut pg = vec![0u8; len as usize];
    io::recv_exact_nb(fd, &mut pg, deadline).map_err(|_| CONNECTION_CLOSED)?;
    if !set_nonblocking(fd, false) {
        return Err(CONNECTION_CLOSED);
    }
    let mbox = crate::session::register(sock, spread_wire::names::name32(&pg))?;
    Ok(Connected { mbox, private_group: pg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_validation() {
        let v = |sec, usec| validate_timeout(Timeout { sec, usec });
        assert_eq!(v(0, 0), Ok(None));
        for bad in [(1, -5), (-1, 5), (0, 1_000_000), (0, -1_000_000), (i64::MIN, 1), (0, i64::MAX)] {
            assert_eq!(v(bad.0, bad.1), Err(ILLEGAL_TIME), "{bad:?}");
        }
        let now = Instant::now();
        assert!(matches!(v(-1, 0), Ok(Some(d)) if d <= Instant::now()));
        assert!(matches!(v(0, -999_999), Ok(Some(d)) if d <= Instant::now()));
        assert!(matches!(v(2, 500_000), Ok(Some(d)) if d >= now + Duration::from_millis(2500)));
        // Absurdly far deadlines neither panic nor expire.
        assert!(matches!(v(i64::MAX, 999_999), Ok(None) | Ok(Some(_))));
        assert!(matches!(v(i64::MIN, 0), Ok(Some(_))));
    }
}
