//! The loads: spflooder-style floods and spping-style ping-pong against one
//! daemon, and their ring counterparts across several daemons
//! ([`ring_flood`], [`ping_pong_across`]).

use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use spread_wire::endian::clear_endian;
use spread_wire::names::name32;
use spread_wire::{AGREED_MESS, REGULAR_MESS, REJECT_MESS, RELIABLE_MESS, SELF_DISCARD};

use crate::client::{encode_frame, Conn, Endpoint, FrameReader};

const GROUP_FLOOD: &str = "bflood";
const GROUP_PING: &str = "bping";
const GROUP_RING: &str = "bring";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Who sends and who receives in a flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodMode {
    /// One sending session (not a member) and one receiving member
    /// (`spflooder -wo` + `spflooder -ro`).
    OneToOne,
    /// One member session that sends to its own group and receives its own
    /// messages (spflooder's default mode).
    SelfRecv,
}

impl FloodMode {
    pub fn label(self) -> &'static str {
        match self {
            FloodMode::OneToOne => "1 sender -> 1 receiver",
            FloodMode::SelfRecv => "sender also receives",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FloodResult {
    pub messages: u64,
    pub body: usize,
    pub secs: f64,
}

impl FloodResult {
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.secs
    }
    /// Payload megabits per second (bodies only, like spflooder's figures).
    pub fn mbit_per_sec(&self) -> f64 {
        self.messages as f64 * self.body as f64 * 8.0 / self.secs / 1e6
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

fn poll2(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<()> {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the
    // duration of the call, and its length is passed alongside.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Run one flood of `count` messages of `body` bytes (RELIABLE, like
/// spflooder). At most `window` messages are ever in flight (sent but not yet
/// received), which keeps every daemon below its per-session queue limit of
/// 1000 messages. Times from the first byte written to the last message
/// received; fails after `limit`.
pub fn flood(
    ep: &Endpoint,
    tag: &str,
    mode: FloodMode,
    body: usize,
    count: u64,
    window: u64,
    limit: Duration,
) -> io::Result<FloodResult> {
    let group = format!("{GROUP_FLOOD}{tag}");
    let mut rx = Conn::connect(ep, &format!("r{tag}"), true, CONNECT_TIMEOUT)?;
    rx.join(&group)?;
    rx.wait_members(&group, 1, 100)?;
    let mut tx_own = match mode {
        FloodMode::OneToOne => Some(Conn::connect(ep, &format!("s{tag}"), false, CONNECT_TIMEOUT)?),
        FloodMode::SelfRecv => None,
    };

    let payload = vec![0x5au8; body];
    let dest = [name32(group.as_bytes())];
    let sender_name = tx_own.as_ref().map(|c| c.private_group).unwrap_or(rx.private_group);
    let mut one = Vec::new();
    encode_frame(&mut one, RELIABLE_MESS, &sender_name, &dest, 0, &payload);

    let body_off = spread_wire::HEADER_LEN + spread_wire::MAX_GROUP_NAME;
    rx.stream.set_nonblocking(true)?;
    if let Some(t) = tx_own.as_ref() {
        t.stream.set_nonblocking(true)?;
    }
    let mut reader = FrameReader::new((one.len() * 4).max(1 << 20));
    let mut out: Vec<u8> = Vec::with_capacity(one.len() * 64);
    let mut out_pos = 0usize;
    let (mut queued, mut received) = (0u64, 0u64);
    let batch_bytes = 256 * 1024;
    let start = Instant::now();
    let deadline = start + limit;
    let mut t_first: Option<Instant> = None;

    while received < count {
        let mut progress = false;
        // Refill the output buffer within the window.
        if out_pos == out.len() {
            out.clear();
            out_pos = 0;
            while queued < count
                && queued - received < window
                && (out.is_empty() || out.len() + one.len() <= batch_bytes)
            {
                let at = out.len() + body_off;
                out.extend_from_slice(&one);
                if body >= 8 {
                    out[at..at + 8].copy_from_slice(&queued.to_le_bytes());
                }
                queued += 1;
            }
        }
        // Write.
        if out_pos < out.len() {
            let tx = match tx_own.as_mut() {
                Some(t) => &mut t.stream,
                None => &mut rx.stream,
            };
            match tx.write(&out[out_pos..]) {
                Ok(n) => {
                    if t_first.is_none() {
                        t_first = Some(Instant::now());
                    }
                    out_pos += n;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Read and count.
        if !reader.fill(&mut rx.stream)? {
            return Err(err(format!("daemon closed the receiving session after {received} messages")));
        }
        while let Some((h, f)) = reader.next_frame()? {
            let svc = clear_endian(h.type_);
            if svc & REJECT_MESS != 0 {
                return Err(err("message rejected"));
            }
            if svc & REGULAR_MESS != 0 {
                // Every message must arrive whole, once, and in order.
                if h.data_len as usize != body || h.num_groups != 1 || f.len() != one.len() {
                    return Err(err(format!(
                        "message {received}: wrong shape (data_len {}, groups {})",
                        h.data_len, h.num_groups
                    )));
                }
                if body >= 8 {
                    let mut seq = [0u8; 8];
                    seq.copy_from_slice(&f[body_off..body_off + 8]);
                    let seq = u64::from_le_bytes(seq);
                    if seq != received {
                        return Err(err(format!("out of order or lost: got #{seq}, expected #{received}")));
                    }
                }
                received += 1;
                progress = true;
            }
        }
        if received >= count {
            break;
        }
        if Instant::now() > deadline {
            return Err(err(format!("flood timed out: {received}/{count} received")));
        }
        if !progress {
            let mut fds = vec![libc::pollfd { fd: rx.stream.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            if out_pos < out.len() {
                let fd = tx_own.as_ref().map(|t| t.stream.as_raw_fd()).unwrap_or(rx.stream.as_raw_fd());
                if fd == fds[0].fd {
                    fds[0].events |= libc::POLLOUT;
                } else {
                    fds.push(libc::pollfd { fd, events: libc::POLLOUT, revents: 0 });
                }
            }
            poll2(&mut fds, 200)?;
        }
    }
    let end = Instant::now();
    let secs = end.duration_since(t_first.unwrap_or(start)).as_secs_f64().max(1e-9);
    for c in [Some(rx), tx_own].into_iter().flatten() {
        let _ = c.stream.set_nonblocking(false);
        c.disconnect();
    }
    Ok(FloodResult { messages: count, body, secs })
}

/// Round trips in microseconds, sorted.
pub struct PingResult {
    pub rtts_us: Vec<f64>,
}

impl PingResult {
    pub fn percentile(&self, p: f64) -> f64 {
        percentile(&self.rtts_us, p)
    }
}

/// Nearest-rank percentile of a sorted slice (NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// spping-style ping-pong: A multicasts `body` bytes RELIABLE|SELF_DISCARD to a
/// group both A and B joined; B answers to A's private group with the same
/// bytes; A's round trip is measured. One thread drives both sessions with
/// blocking reads, so no thread wake-ups are in the path.
pub fn ping_pong(
    ep: &Endpoint,
    tag: &str,
    body: usize,
    warmup: usize,
    iters: usize,
    limit: Duration,
) -> io::Result<PingResult> {
    ping_pong_across(ep, ep, tag, RELIABLE_MESS, body, warmup, iters, limit)
}

/// [`ping_pong`] with A connected to `ep_a` and B to `ep_b` (on a ring: two
/// different daemons, so both the ping and the answer cross the ring), and
/// `service` for both messages (the ping adds SELF_DISCARD).
#[allow(clippy::too_many_arguments)]
pub fn ping_pong_across(
    ep_a: &Endpoint,
    ep_b: &Endpoint,
    tag: &str,
    service: u32,
    body: usize,
    warmup: usize,
    iters: usize,
    limit: Duration,
) -> io::Result<PingResult> {
    let group = format!("{GROUP_PING}{tag}");
    let mut a = Conn::connect(ep_a, &format!("pa{tag}"), true, CONNECT_TIMEOUT)?;
    let mut b = Conn::connect(ep_b, &format!("pb{tag}"), true, CONNECT_TIMEOUT)?;
    a.join(&group)?;
    a.wait_members(&group, 1, 100)?;
    b.join(&group)?;
    a.wait_members(&group, 2, 100)?;
    b.wait_members(&group, 2, 100)?;
    let dest = [name32(group.as_bytes())];
    let reply_to = [a.private_group];
    let mut payload = vec![0x33u8; body];
    let mut rtts = Vec::with_capacity(iters);
    let deadline = Instant::now() + limit;
    for i in 0..warmup + iters {
        if Instant::now() > deadline {
            return Err(err(format!("ping-pong timed out after {i} round trips")));
        }
        if body >= 4 {
            payload[..4].copy_from_slice(&(i as u32).to_le_bytes());
        }
        let t0 = Instant::now();
        a.send(service | SELF_DISCARD, &dest, 1, &payload)?;
        let m = recv_data(&mut b)?;
        b.send(service, &reply_to, 2, &m.body)?;
        let r = recv_data(&mut a)?;
        let dt = t0.elapsed();
        if r.body != payload {
            return Err(err("ping-pong body mismatch"));
        }
        if i >= warmup {
            rtts.push(dt.as_secs_f64() * 1e6);
        }
    }
    a.disconnect();
    b.disconnect();
    rtts.sort_by(|x, y| x.total_cmp(y));
    Ok(PingResult { rtts_us: rtts })
}

/// One session of a [`ring_flood`]: a member of the flood group on one
/// daemon; the first `senders` of them also send.
struct RingSess {
    conn: Conn,
    reader: FrameReader,
    /// Sender side: messages queued so far, the bytes not yet written.
    queued: u64,
    out: Vec<u8>,
    out_pos: usize,
    /// Receiver side: the next sequence number expected from each sender,
    /// messages received, and a hash of the order they came in.
    next: Vec<u64>,
    received: u64,
    order_hash: u64,
}

/// A ring flood: one member session of one group on every daemon of
/// `eps`; the first `senders` of them each multicast `count / senders`
/// messages of `body` (>= 16) bytes with `service` (AGREED: one total
/// order) to the group, and every session receives every message, its own
/// included. A sender keeps at most `window` of its messages in flight (sent
/// but not yet received by every session), so no session's queue in any
/// daemon grows past `senders * window` messages. Every message is checked:
/// size, single group, per-sender sequence (no loss, no duplicate, FIFO); at
/// the end every session must have seen the same order. Times from the
/// first byte written to the last message received by the last session.
#[allow(clippy::too_many_arguments)]
pub fn ring_flood(
    eps: &[Endpoint],
    tag: &str,
    senders: usize,
    service: u32,
    body: usize,
    count: u64,
    window: u64,
    limit: Duration,
) -> io::Result<FloodResult> {
    let n = eps.len();
    if senders == 0 || senders > n || body < 16 {
        return Err(err("ring flood: 1..=daemons senders and bodies of at least 16 bytes"));
    }
    let per_sender = (count / senders as u64).max(1);
    let total = per_sender * senders as u64;
    let group = format!("{GROUP_RING}{tag}");
    let deadline = Instant::now() + limit;
    let mut ss: Vec<RingSess> = Vec::with_capacity(n);
    for (i, ep) in eps.iter().enumerate() {
        let mut c = Conn::connect(ep, &format!("f{tag}{i}"), true, CONNECT_TIMEOUT)?;
        c.join(&group)?;
        ss.push(RingSess {
            conn: c,
            reader: FrameReader::new((4 * (body + 200)).max(1 << 20)),
            queued: 0,
            out: Vec::new(),
            out_pos: 0,
            next: vec![0; senders],
            received: 0,
            order_hash: 0xcbf2_9ce4_8422_2325,
        });
    }
    for s in ss.iter_mut() {
        s.conn.wait_members_until(&group, n, deadline)?;
    }
    let dest = [name32(group.as_bytes())];
    let payload = vec![0x5au8; body];
    let body_off = spread_wire::HEADER_LEN + spread_wire::MAX_GROUP_NAME;
    let ones: Vec<Vec<u8>> = ss
        .iter()
        .take(senders)
        .map(|s| {
            let mut one = Vec::new();
            encode_frame(&mut one, service, &s.conn.private_group, &dest, 0, &payload);
            one
        })
        .collect();
    let frame_len = ones[0].len();
    for s in &ss {
        s.conn.stream.set_nonblocking(true)?;
    }
    let batch_bytes = 256 * 1024;
    let start = Instant::now();
    let mut t_first: Option<Instant> = None;
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(n);
    // Bounded by `deadline`.
    while ss.iter().any(|s| s.received < total) {
        let mut progress = false;
        for k in 0..n {
            // The slowest session's progress on sender k's messages.
            if k < senders {
                let acked = ss.iter().map(|s| s.next[k]).min().unwrap_or(0);
                let s = &mut ss[k];
                if s.out_pos == s.out.len() {
                    s.out.clear();
                    s.out_pos = 0;
                    while s.queued < per_sender
                        && s.queued - acked < window
                        && (s.out.is_empty() || s.out.len() + frame_len <= batch_bytes)
                    {
                        let at = s.out.len() + body_off;
                        s.out.extend_from_slice(&ones[k]);
                        s.out[at..at + 8].copy_from_slice(&s.queued.to_le_bytes());
                        s.out[at + 8] = k as u8;
                        s.queued += 1;
                    }
                }
                if s.out_pos < s.out.len() {
                    match s.conn.stream.write(&s.out[s.out_pos..]) {
                        Ok(w) => {
                            t_first.get_or_insert_with(Instant::now);
                            s.out_pos += w;
                            progress |= w > 0;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            let s = &mut ss[k];
            if !s.reader.fill(&mut s.conn.stream)? {
                return Err(err(format!("daemon {k} closed its session after {} messages", s.received)));
            }
            while let Some((h, f)) = s.reader.next_frame()? {
                let svc = clear_endian(h.type_);
                if svc & REJECT_MESS != 0 {
                    return Err(err("message rejected"));
                }
                if svc & REGULAR_MESS == 0 {
                    continue;
                }
                if h.data_len as usize != body || h.num_groups != 1 || f.len() != frame_len {
                    return Err(err(format!(
                        "session {k}, message {}: wrong shape (data_len {}, groups {})",
                        s.received, h.data_len, h.num_groups
                    )));
                }
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&f[body_off..body_off + 8]);
                let seq = u64::from_le_bytes(seq);
                let from = f[body_off + 8] as usize;
                if from >= senders || seq != s.next[from] {
                    return Err(err(format!(
                        "session {k}: from sender {from} got #{seq}, expected #{}",
                        s.next.get(from).copied().unwrap_or(0)
                    )));
                }
                s.next[from] += 1;
                s.received += 1;
                s.order_hash = (s.order_hash ^ (seq << 8 | from as u64)).wrapping_mul(0x0100_0000_01b3);
                progress = true;
            }
        }
        if ss.iter().all(|s| s.received >= total) {
            break;
        }
        if Instant::now() > deadline {
            let got: Vec<u64> = ss.iter().map(|s| s.received).collect();
            return Err(err(format!("ring flood timed out: received {got:?} of {total} each")));
        }
        if !progress {
            fds.clear();
            for s in &ss {
                let mut ev = libc::POLLIN;
                if s.out_pos < s.out.len() {
                    ev |= libc::POLLOUT;
                }
                fds.push(libc::pollfd { fd: s.conn.stream.as_raw_fd(), events: ev, revents: 0 });
            }
            poll2(&mut fds, 200)?;
        }
    }
    let end = Instant::now();
    let secs = end.duration_since(t_first.unwrap_or(start)).as_secs_f64().max(1e-9);
    if service & (AGREED_MESS | spread_wire::SAFE_MESS) != 0 && ss.iter().any(|s| s.order_hash != ss[0].order_hash) {
        return Err(err("sessions on different daemons saw different message orders"));
    }
    for s in ss {
        let _ = s.conn.stream.set_nonblocking(false);
        s.conn.disconnect();
    }
    Ok(FloodResult { messages: total, body, secs })
}

fn recv_data(c: &mut Conn) -> io::Result<crate::client::Message> {
    // Membership messages may still trickle in; skip a bounded number.
    for _ in 0..64 {
        let m = c.recv()?;
        if m.service() & REJECT_MESS != 0 {
            return Err(err("message rejected"));
        }
        if m.service() & REGULAR_MESS != 0 {
            return Ok(m);
        }
    }
    Err(err("no data message among 64 received"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
        let r = FloodResult { messages: 1000, body: 1000, secs: 0.5 };
        assert_eq!(r.msgs_per_sec(), 2000.0);
        assert_eq!(r.mbit_per_sec(), 16.0);
    }
}
