//! A deliberately small raw-protocol client, built on `spread-wire` only.
//!
//! The benchmark must put the *same* client load on every daemon it compares,
//! so it speaks the wire protocol itself instead of going through a library
//! whose cost might differ between builds. Everything here is blocking except
//! where the caller switches a socket to non-blocking for the flood loop.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use spread_wire::endian::ARCH_ENDIAN;
use spread_wire::handshake::{encode_auth_choice, encode_connect_request};
use spread_wire::header::encode_hint;
use spread_wire::names::{name32, name_bytes, Name32};
use spread_wire::{Header, HEADER_LEN, JOIN_MESS, LEAVE_MESS, MAX_GROUP_NAME, REJECT_MESS};

/// Where a daemon listens for clients.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(SocketAddr),
    /// Unix socket path (`/tmp/<port>` for a default build).
    Unix(String),
}

impl Endpoint {
    pub fn tcp_loopback(port: u16) -> Endpoint {
        Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
    }
    pub fn unix_default(port: u16) -> Endpoint {
        Endpoint::Unix(format!("/tmp/{port}"))
    }
}

/// A TCP or Unix stream behind one type.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(nb),
            Stream::Unix(s) => s.set_nonblocking(nb),
        }
    }
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// One message as received (header decoded, groups and body split off).
#[derive(Debug, Clone)]
pub struct Message {
    pub header: Header,
    pub groups: Vec<Name32>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn service(&self) -> u32 {
        spread_wire::endian::clear_endian(self.header.type_)
    }
    pub fn sender(&self) -> &[u8] {
        name_bytes(&self.header.sender)
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Size of a whole daemon→client frame once its header is known, or `None`
/// for a header no daemon should send (negative counts, absurd sizes).
pub fn frame_len(h: &Header) -> Option<usize> {
    let reject = spread_wire::endian::clear_endian(h.type_) & REJECT_MESS != 0;
    let rest = h.rest_len(reject)?;
    if rest > 4 * 1024 * 1024 {
        return None;
    }
    Some(HEADER_LEN + rest)
}

/// Split a complete frame into a [`Message`].
pub fn parse_frame(frame: &[u8]) -> Option<Message> {
    let header = Header::decode_slice(frame)?;
    let total = frame_len(&header)?;
    if frame.len() < total {
        return None;
    }
    let reject = spread_wire::endian::clear_endian(header.type_) & REJECT_MESS != 0;
    let mut off = HEADER_LEN + if reject { 4 } else { 0 };
    let mut groups = Vec::with_capacity(header.num_groups as usize);
    for _ in 0..header.num_groups {
        let mut g = [0u8; MAX_GROUP_NAME];
        g.copy_from_slice(&frame[off..off + MAX_GROUP_NAME]);
        groups.push(g);
        off += MAX_GROUP_NAME;
    }
    Some(Message { header, groups, body: frame[off..total].to_vec() })
}

/// Append one client→daemon frame (header, groups, body) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, service: u32, sender: &Name32, groups: &[Name32], mess_type: i16, body: &[u8]) {
    let h = Header {
        type_: (service & !spread_wire::ENDIAN_RESERVED) | ARCH_ENDIAN,
        sender: *sender,
        num_groups: groups.len() as i32,
        hint: encode_hint(mess_type),
        data_len: body.len() as i32,
    };
    out.extend_from_slice(&h.encode());
    for g in groups {
        out.extend_from_slice(g);
    }
    out.extend_from_slice(body);
}

/// A connected session.
pub struct Conn {
    pub stream: Stream,
    /// `#user#daemon`, NUL-padded.
    pub private_group: Name32,
}

impl Conn {
    /// Connect and run the handshake (NULL authentication), like
    /// `SP_connect(…, priority 0, group_membership)`.
    pub fn connect(ep: &Endpoint, user: &str, group_membership: bool, timeout: Duration) -> io::Result<Conn> {
        let mut stream = match ep {
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, timeout)?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            Endpoint::Unix(p) => Stream::Unix(UnixStream::connect(p)?),
        };
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(&encode_connect_request(group_membership, 0, user.as_bytes()))?;
        let mut b = [0u8; 1];
        stream.read_exact(&mut b)?;
        if (b[0] as i8) < 0 {
            return Err(err(format!("connect rejected: {}", spread_wire::strerror(b[0] as i8 as i32))));
        }
        let mut list = vec![0u8; b[0] as usize];
        stream.read_exact(&mut list)?;
        if !spread_wire::handshake::auth_list_tokens(&list).any(|t| t == b"NULL") {
            return Err(err("daemon does not offer NULL authentication"));
        }
        stream.write_all(&encode_auth_choice(&[b"NULL"]))?;
        stream.read_exact(&mut b)?;
        if b[0] != 1 {
            return Err(err(format!("session rejected: {}", spread_wire::strerror(b[0] as i8 as i32))));
        }
        let mut v = [0u8; 4];
        stream.read_exact(&mut v)?; // major, minor, patch, name length
        let mut name = vec![0u8; v[3] as usize];
        stream.read_exact(&mut name)?;
        Ok(Conn { stream, private_group: name32(&name) })
    }

    pub fn private_group_str(&self) -> String {
        String::from_utf8_lossy(name_bytes(&self.private_group)).into_owned()
    }

    pub fn send(&mut self, service: u32, groups: &[Name32], mess_type: i16, body: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(HEADER_LEN + 32 * groups.len() + body.len());
        encode_frame(&mut buf, service, &self.private_group, groups, mess_type, body);
        self.stream.write_all(&buf)
    }

    pub fn join(&mut self, group: &str) -> io::Result<()> {
        self.send(JOIN_MESS, &[name32(group.as_bytes())], 0, &[])
    }

    pub fn leave(&mut self, group: &str) -> io::Result<()> {
        self.send(LEAVE_MESS, &[name32(group.as_bytes())], 0, &[])
    }

    /// Blocking receive of one whole message.
    pub fn recv(&mut self) -> io::Result<Message> {
        let mut hb = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut hb)?;
        let h = Header::decode(&hb);
        let total = frame_len(&h).ok_or_else(|| err("bad header from daemon"))?;
        let mut frame = vec![0u8; total];
        frame[..HEADER_LEN].copy_from_slice(&hb);
        self.stream.read_exact(&mut frame[HEADER_LEN..])?;
        parse_frame(&frame).ok_or_else(|| err("bad frame from daemon"))
    }

    /// Receive until a regular membership for `group` with at least
    /// `members` members arrives (bounded by the socket's read timeout and
    /// by `max_msgs` messages).
    pub fn wait_members(&mut self, group: &str, members: usize, max_msgs: usize) -> io::Result<()> {
        for _ in 0..max_msgs {
            let m = self.recv()?;
            if m.service() & spread_wire::REG_MEMB_MESS != 0
                && m.sender() == group.as_bytes()
                && m.groups.len() >= members
            {
                return Ok(());
            }
        }
        Err(err(format!("no membership of {members} for {group}")))
    }

    /// Like [`Conn::wait_members`], bounded by `deadline` instead of a
    /// message count (a ring's first membership may take seconds).
    pub fn wait_members_until(&mut self, group: &str, members: usize, deadline: Instant) -> io::Result<()> {
        // Bounded by the deadline and by at most 100 000 messages.
        for _ in 0..100_000 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let m = match self.recv() {
                Ok(m) => m,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                Err(e) => return Err(e),
            };
            if m.service() & spread_wire::REG_MEMB_MESS != 0
                && m.sender() == group.as_bytes()
                && m.groups.len() >= members
            {
                return Ok(());
            }
        }
        Err(err(format!("no membership of {members} for {group} in time")))
    }

    /// Send the disconnect (KILL) message and close.
    pub fn disconnect(mut self) {
        let pg = self.private_group;
        let _ = self.send(spread_wire::KILL_MESS, &[pg], 0, &[]);
    }
}

/// Incremental frame reassembly over a non-blocking stream.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new(1 << 20)
    }
}

impl FrameReader {
    pub fn new(cap: usize) -> FrameReader {
        FrameReader { buf: vec![0; cap], start: 0, end: 0 }
    }

    /// Read what is available (one `read`). `Ok(false)` on EOF.
    pub fn fill(&mut self, s: &mut Stream) -> io::Result<bool> {
        if self.start > 0 && (self.end == self.buf.len() || self.start == self.end) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        match s.read(&mut self.buf[self.end..]) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Next complete frame (header, and the rest), if any.
    pub fn next_frame(&mut self) -> io::Result<Option<(Header, &[u8])>> {
        let avail = &self.buf[self.start..self.end];
        let Some(h) = Header::decode_slice(avail) else {
            return Ok(None);
        };
        let total = frame_len(&h).ok_or_else(|| err("bad header from daemon"))?;
        if avail.len() < total {
            if total > self.buf.len() {
                self.buf.resize(total * 2, 0);
            }
            return Ok(None);
        }
        let s = self.start;
        self.start += total;
        Ok(Some((h, &self.buf[s..s + total])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::RELIABLE_MESS;

    #[test]
    fn frame_roundtrip_and_reassembly() {
        let me = name32(b"#a#localhost");
        let mut wire = Vec::new();
        encode_frame(&mut wire, RELIABLE_MESS, &me, &[name32(b"g")], 7, b"hello");
        encode_frame(&mut wire, RELIABLE_MESS, &me, &[name32(b"g")], 8, &[9u8; 3000]);
        assert_eq!(wire.len(), 2 * (48 + 32) + 5 + 3000);
        let m = parse_frame(&wire).unwrap();
        assert_eq!(m.body, b"hello");
        assert_eq!(m.header.mess_type().0, 7);
        assert_eq!(m.sender(), b"#a#localhost");
        // Reassembly across tiny reads through a socketpair.
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = Stream::Unix(a);
        let mut b = Stream::Unix(b);
        b.set_nonblocking(true).unwrap();
        let mut r = FrameReader::new(64);
        let mut got = Vec::new();
        for chunk in wire.chunks(37) {
            a.write_all(chunk).unwrap();
            r.fill(&mut b).unwrap();
            while let Some((h, f)) = r.next_frame().unwrap() {
                got.push((h.data_len, f.len()));
            }
        }
        for _ in 0..100 {
            if got.len() == 2 {
                break;
            }
            r.fill(&mut b).unwrap();
            while let Some((h, f)) = r.next_frame().unwrap() {
                got.push((h.data_len, f.len()));
            }
        }
        assert_eq!(got, vec![(5, 85), (3000, 3080)]);
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let mut h = [0u8; 48];
        h[0..4].copy_from_slice(&(0x8000_0080u32 | RELIABLE_MESS).to_le_bytes());
        h[36..40].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(parse_frame(&h).is_none());
        h[36..40].copy_from_slice(&(1i32).to_le_bytes());
        h[44..48].copy_from_slice(&(i32::MAX).to_le_bytes());
        assert!(parse_frame(&h).is_none());
    }
}
