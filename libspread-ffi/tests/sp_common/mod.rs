//! Shared helpers of the `sp_*` tests: an in-process fake daemon that speaks
//! the daemon side of the client protocol, frame builders, and thin wrappers
//! over the C functions. Ports 21000–21099 (Unix paths /tmp/410xx).
#![allow(dead_code)]

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::raw::c_char;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::Duration;

use spread_ffi::sp::*;
use spread_ffi::types::*;
pub use spread_wire::consts::*;
use spread_wire::header::Header;

/// Abort the whole test process if it runs for more than 3 minutes: no test
/// may hang CI, whatever goes wrong.
pub fn watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(180));
            eprintln!("sp test watchdog: test process ran for 180 s, aborting");
            std::process::abort();
        });
    });
}

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Bind the Unix socket the library will use for spread name `"<port>"`.
pub fn unix_listener(port: u16) -> UnixListener {
    assert!((21000..21100).contains(&port));
    let path = format!("/tmp/{port}");
    let _ = std::fs::remove_file(&path);
    UnixListener::bind(&path).expect("bind fake daemon socket")
}

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn set_timeouts(s: &UnixStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
}

/// Serve one connection on `/tmp/<port>` with `f` in a thread.
pub fn serve<F>(port: u16, f: F) -> JoinHandle<()>
where
    F: FnOnce(UnixStream) + Send + 'static,
{
    watchdog();
    let l = unix_listener(port);
    std::thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        set_timeouts(&s);
        f(s)
    })
}

/// Serve `n` connections on `/tmp/<port>`, each with its own thread.
pub fn serve_n<F>(port: u16, n: usize, f: F) -> JoinHandle<()>
where
    F: Fn(usize, UnixStream) + Send + Sync + Clone + 'static,
{
    watchdog();
    let l = unix_listener(port);
    std::thread::spawn(move || {
        let mut hs = vec![];
        for i in 0..n {
            let (s, _) = l.accept().expect("accept");
            set_timeouts(&s);
            let f = f.clone();
            hs.push(std::thread::spawn(move || f(i, s)));
        }
        for h in hs {
            h.join().unwrap();
        }
    })
}

/// A TCP fake daemon on 127.0.0.1 (or ::1), any free port.
pub fn serve_tcp<F>(v6: bool, f: F) -> Option<(u16, JoinHandle<()>)>
where
    F: FnOnce(std::net::TcpStream) + Send + 'static,
{
    watchdog();
    let l = TcpListener::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).ok()?;
    let port = l.local_addr().unwrap().port();
    Some((
        port,
        std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            f(s)
        }),
    ))
}

pub fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).expect("fake daemon read");
    v
}

/// Read the connect request (`5 + L` bytes).
pub fn read_request(s: &mut impl Read) -> Vec<u8> {
    let mut v = read_n(s, 5);
    let l = v[4] as usize;
    v.extend(read_n(s, l));
    v
}

/// The stock daemon side of the handshake; returns (request, auth choice).
pub fn handshake(s: &mut impl Stream, private_group: &str) -> (Vec<u8>, Vec<u8>) {
    let req = read_request(s);
    s.write_all(b"\x05NULL ").unwrap();
    let choice = read_n(s, 90);
    let mut acc = vec![1, 5, 0, 1, private_group.len() as u8];
    acc.extend_from_slice(private_group.as_bytes());
    s.write_all(&acc).unwrap();
    (req, choice)
}

/// Read one client→daemon frame: (header, group names, body).
pub fn read_frame(s: &mut impl Read) -> (Header, Vec<[u8; 32]>, Vec<u8>, Vec<u8>) {
    let raw = read_n(s, 48);
    let h = Header::decode_slice(&raw).unwrap();
    assert!(h.num_groups >= 0 && h.data_len >= 0, "frame sizes {h:?}");
    let mut all = raw.clone();
    let gb = read_n(s, 32 * h.num_groups as usize);
    all.extend_from_slice(&gb);
    let groups = gb.chunks(32).map(|c| c.try_into().unwrap()).collect();
    let body = read_n(s, h.data_len as usize);
    all.extend_from_slice(&body);
    (h, groups, body, all)
}

/// Expect EOF (the client closed) within the read timeout.
pub fn expect_eof(s: &mut impl Read) {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(_) => panic!("expected EOF, got data"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected EOF, got {e}"),
    }
}

pub fn name32(s: &str) -> [u8; 32] {
    spread_wire::names::name32(s.as_bytes())
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A daemon→client frame with LE integers (the marker bits are up to `type_`).
pub fn frame_le(type_: u32, sender: &str, groups: &[&str], hint: u32, body: &[u8]) -> Vec<u8> {
    let mut v = type_.to_le_bytes().to_vec();
    v.extend_from_slice(&name32(sender));
    v.extend_from_slice(&(groups.len() as i32).to_le_bytes());
    v.extend_from_slice(&hint.to_le_bytes());
    v.extend_from_slice(&(body.len() as i32).to_le_bytes());
    for g in groups {
        v.extend_from_slice(&name32(g));
    }
    v.extend_from_slice(body);
    v
}

/// A daemon→client frame with BE integers; `hint_bytes` as they go on the wire.
pub fn frame_be(type_: u32, sender: &str, groups: &[&str], hint_bytes: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = type_.to_be_bytes().to_vec();
    v.extend_from_slice(&name32(sender));
    v.extend_from_slice(&(groups.len() as i32).to_be_bytes());
    v.extend_from_slice(&hint_bytes);
    v.extend_from_slice(&(body.len() as i32).to_be_bytes());
    for g in groups {
        v.extend_from_slice(&name32(g));
    }
    v.extend_from_slice(body);
    v
}

pub fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// `SP_connect` → (return, mbox, private group).
pub fn connect(spread: &str, name: Option<&str>, priority: i32, membership: i32) -> (i32, i32, String) {
    let sp = cstr(spread);
    let nm = name.map(cstr);
    let mut mbox = -7;
    let mut pg = [0 as c_char; 32];
    let r = unsafe {
        SP_connect(
            sp.as_ptr(),
            nm.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            priority,
            membership,
            &mut mbox,
            pg.as_mut_ptr(),
        )
    };
    let n = pg.iter().position(|&c| c == 0).unwrap_or(32);
    (r, mbox, String::from_utf8_lossy(&pg[..n].iter().map(|&c| c as u8).collect::<Vec<_>>()).into_owned())
}

/// Connect to a fake daemon on `/tmp/<port>` that runs the stock handshake and
/// then `f`. Returns the mbox and the daemon thread.
pub fn open<F>(port: u16, name: &str, f: F) -> (i32, JoinHandle<()>)
where
    F: FnOnce(UnixStream) + Send + 'static,
{
    let pg = format!("#{name}#fake");
    let h = serve(port, move |mut s| {
        handshake(&mut s, &pg);
        f(s)
    });
    let (r, mbox, got) = connect(&port.to_string(), Some(name), 0, 1);
    assert_eq!(r, ACCEPT_SESSION, "connect to fake daemon");
    assert_eq!(got, format!("#{name}#fake"));
    (mbox, h)
}

/// Everything a receive call produced. Outputs start as sentinels so that
/// "untouched" can be asserted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rx {
    pub ret: i32,
    pub service: i32,
    pub sender: String,
    pub num_groups: i32,
    pub groups: Vec<String>,
    pub mess_type: i16,
    pub endian_mismatch: i32,
    pub body: Vec<u8>,
}

pub const SENTINEL: i32 = 0x5a5a_5a5a;
pub const SENTINEL16: i16 = 0x5a5a;

fn cname(b: &[c_char]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n].iter().map(|&c| c as u8).collect::<Vec<_>>()).into_owned()
}

/// `SP_receive` with room for `max_groups` names and `max_len` bytes.
pub fn recv(mbox: i32, service_in: i32, max_groups: usize, max_len: usize) -> Rx {
    let mut service = service_in;
    let mut sender = [0x5a as c_char; 32];
    let mut num_groups = SENTINEL;
    let mut groups = vec![[0 as c_char; 32]; max_groups.max(1)];
    let mut mess_type = SENTINEL16;
    let mut em = SENTINEL;
    let mut body = vec![0u8; max_len.max(1)];
    let ret = unsafe {
        SP_receive(
            mbox,
            &mut service,
            sender.as_mut_ptr(),
            max_groups as i32,
            &mut num_groups,
            groups.as_mut_ptr(),
            &mut mess_type,
            &mut em,
            max_len as i32,
            body.as_mut_ptr() as *mut c_char,
        )
    };
    let ng =
        if ret >= 0 || ret == BUFFER_TOO_SHORT { num_groups.unsigned_abs().min(max_groups as u32) as usize } else { 0 };
    let blen = if ret >= 0 {
        ret as usize
    } else if ret == BUFFER_TOO_SHORT && service_in as u32 & DROP_RECV != 0 {
        max_len
    } else {
        0
    };
    Rx {
        ret,
        service,
        sender: cname(&sender),
        num_groups,
        groups: groups[..ng.min(groups.len())].iter().map(|g| cname(g)).collect(),
        mess_type,
        endian_mismatch: em,
        body: body[..blen.min(body.len())].to_vec(),
    }
}

pub fn multicast(mbox: i32, service: u32, group: &str, mess_type: i16, body: &[u8]) -> i32 {
    let g = cstr(group);
    unsafe {
        SP_multicast(mbox, service as i32, g.as_ptr(), mess_type, body.len() as i32, body.as_ptr() as *const c_char)
    }
}

pub fn join(mbox: i32, group: &[u8]) -> i32 {
    let g = CString::new(group).unwrap();
    unsafe { SP_join(mbox, g.as_ptr()) }
}

pub fn leave(mbox: i32, group: &[u8]) -> i32 {
    let g = CString::new(group).unwrap();
    unsafe { SP_leave(mbox, g.as_ptr()) }
}

pub fn poll(mbox: i32) -> i32 {
    unsafe { SP_poll(mbox) }
}

pub fn disconnect(mbox: i32) -> i32 {
    unsafe { SP_disconnect(mbox) }
}

pub fn kill(mbox: i32) {
    unsafe { SP_kill(mbox) }
}

/// An empty scatter.
pub fn empty_scatter() -> scatter {
    scatter { num_elements: 0, elements: [scat_element { buf: std::ptr::null_mut(), len: 0 }; 100] }
}

/// Wait (bounded) until `SP_poll` reports at least `n` bytes: sleeps in
/// poll(2) on the mailbox between checks.
pub fn wait_poll(mbox: i32, n: i32) -> i32 {
    let t0 = std::time::Instant::now();
    loop {
        let p = poll(mbox);
        if p >= n || t0.elapsed() > IO_TIMEOUT {
            return p;
        }
        let mut pfd = libc::pollfd { fd: mbox, events: libc::POLLIN, revents: 0 };
        unsafe { libc::poll(&mut pfd, 1, 50) };
    }
}

/// Read and ignore everything until the client closes (bounded by the read
/// timeout).
pub fn drain_to_eof(s: &mut impl Read) {
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Serve: handshake, write `frames` in one go, then wait for the client to
/// close.
pub fn open_with_frames(port: u16, name: &str, frames: Vec<u8>) -> (i32, JoinHandle<()>) {
    open(port, name, move |mut s| {
        s.write_all(&frames).unwrap();
        drain_to_eof(&mut s);
    })
}

/// `SP_scat_receive` into pieces of the given sizes; returns the result and
/// the concatenated piece contents.
pub fn scat_recv(mbox: i32, service_in: i32, max_groups: usize, sizes: &[usize]) -> (Rx, Vec<Vec<u8>>) {
    let mut bufs: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0u8; n]).collect();
    let mut sc = empty_scatter();
    sc.num_elements = sizes.len();
    for (e, b) in sc.elements.iter_mut().zip(bufs.iter_mut()) {
        *e = scat_element { buf: b.as_mut_ptr() as *mut c_char, len: b.len() };
    }
    let mut service = service_in;
    let mut sender = [0x5a as c_char; 32];
    let mut num_groups = SENTINEL;
    let mut groups = vec![[0 as c_char; 32]; max_groups.max(1)];
    let mut mess_type = SENTINEL16;
    let mut em = SENTINEL;
    let ret = unsafe {
        SP_scat_receive(
            mbox,
            &mut service,
            sender.as_mut_ptr(),
            max_groups as i32,
            &mut num_groups,
            groups.as_mut_ptr(),
            &mut mess_type,
            &mut em,
            &mut sc,
        )
    };
    let ng = if ret >= 0 { num_groups.unsigned_abs().min(max_groups as u32) as usize } else { 0 };
    let rx = Rx {
        ret,
        service,
        sender: cname(&sender),
        num_groups,
        groups: groups[..ng].iter().map(|g| cname(g)).collect(),
        mess_type,
        endian_mismatch: em,
        body: vec![],
    };
    (rx, bufs)
}

/// Syscalls a thread blocked receiving on a mailbox sits in.
pub const RECV_SYSCALLS: [libc::c_long; 2] = [libc::SYS_recvfrom, libc::SYS_recvmsg];
/// Syscalls a thread blocked sending on a mailbox sits in.
pub const SEND_SYSCALLS: [libc::c_long; 2] = [libc::SYS_sendmsg, libc::SYS_sendto];

/// Wait (bounded) until thread `tid` of this process is inside one of
/// `syscalls` (from /proc/self/task/<tid>/syscall) — i.e. blocked in the
/// library's I/O, holding the session lock.
pub fn wait_in_syscall(tid: i32, syscalls: &[libc::c_long]) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < IO_TIMEOUT {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) {
            if let Some(n) = s.split_whitespace().next().and_then(|x| x.parse::<libc::c_long>().ok()) {
                if syscalls.contains(&n) {
                    return true;
                }
            }
        }
        std::thread::yield_now();
    }
    false
}
