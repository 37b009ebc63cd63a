//! FL clients (our `FL_*` over our `SP_*`) on our `spread` daemon: joins,
//! leaves, disconnects and kills with traffic in flight. Checked throughout:
//! every member of an FL view got the same member list for it, and every data
//! message is delivered in the view its sender was in when it sent it (the
//! body carries that view id).
//!
//! Clients are driven from one thread with `DONT_BLOCK` receives; waiting is
//! done with poll(2) on the mailboxes (bounded).
//!
//! Ports 24020–24099 (each daemon uses P, P+1 and /tmp/P).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::time::{Duration, Instant};

use compat_tests::daemon::Daemon;
use compat_tests::frames;
use spread_ffi::fl;

const FIFO: i32 = 0x04;
const RELIABLE: i32 = 0x02;
const AGREED: i32 = 0x10;
const SAFE: i32 = 0x20;
const REG_MEMB: i32 = 0x1000;
const TRANSITION: i32 = 0x2000;
const CAUSED_BY_LEAVE: i32 = 0x200;
const FLUSH_REQ: i32 = 0x2000_0000;
const DONT_BLOCK: i32 = 0x1000_0000;
const WOULD_BLOCK: i32 = -25;
const ILLEGAL_GROUP: i32 = -14;
const ILLEGAL_STATE: i32 = -27;
const GROUP: &str = "flg";

type Gid = [u8; 12];

struct Client {
    /// Received by a thread of its own: the World leaves its mailbox alone.
    external: bool,
    user: String,
    private: String,
    mbox: c_int,
    alive: bool,
    /// FL_join called and no self-leave seen yet.
    in_group: bool,
    leaving: bool,
    view: Option<(Gid, Vec<String>)>,
    views: Vec<(Gid, Vec<String>, i32)>,
    /// (sender, view id in the body, sequence)
    data: Vec<(String, Gid, u32)>,
    flush_reqs: usize,
    trans: usize,
    seq: u32,
}

struct World {
    port: u16,
    clients: Vec<Client>,
    /// Every FL view ever delivered: its member list.
    seen: BTreeMap<Gid, Vec<String>>,
}

fn cs(s: &str) -> CString {
    CString::new(s).unwrap()
}

struct Got {
    ret: i32,
    service: i32,
    sender: String,
    groups: Vec<String>,
    body: Vec<u8>,
}

fn recv_nb(mbox: c_int) -> Got {
    let mut svc = DONT_BLOCK;
    let mut sender = [0 as c_char; 32];
    let mut groups = [[0 as c_char; 32]; 16];
    let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
    let mut body = vec![0u8; 4096];
    // SAFETY: every buffer is live and as large as announced.
    let ret = unsafe {
        fl::FL_receive(
            mbox,
            &mut svc,
            sender.as_mut_ptr(),
            16,
            &mut ng,
            groups.as_mut_ptr(),
            &mut mt,
            &mut em,
            4096,
            body.as_mut_ptr() as *mut c_char,
            &mut more,
        )
    };
    let s = |n: &[c_char; 32]| frames::name_str(&n.map(|c| c as u8));
    Got {
        ret,
        service: svc,
        sender: s(&sender),
        groups: groups[..ng.clamp(0, 16) as usize].iter().map(s).collect(),
        body: body[..ret.clamp(0, 4096) as usize].to_vec(),
    }
}

impl World {
    fn new(port: u16, users: &[&str]) -> World {
        let mut w = World { port, clients: Vec::new(), seen: BTreeMap::new() };
        for u in users {
            w.connect(u);
        }
        w
    }

    fn reconnect(&mut self, slot: usize, user: &str) {
        let i = self.connect(user);
        let c = self.clients.remove(i);
        self.clients[slot] = c;
    }

    fn connect(&mut self, user: &str) -> usize {
        // SAFETY: no arguments.
        unsafe { fl::FL_lib_init() };
        let d = cs(&format!("{}@127.0.0.1", self.port));
        let u = cs(user);
        let mut mbox = -1;
        let mut private = [0 as c_char; 32];
        // SAFETY: valid strings and out-buffers.
        let r = unsafe { fl::FL_connect(d.as_ptr(), u.as_ptr(), 0, &mut mbox, private.as_mut_ptr()) };
        assert_eq!(r, 1, "FL_connect {user}");
        let c = Client {
            external: false,
            user: user.into(),
            private: frames::name_str(&private.map(|c| c as u8)),
            mbox,
            alive: true,
            in_group: false,
            leaving: false,
            view: None,
            views: Vec::new(),
            data: Vec::new(),
            flush_reqs: 0,
            trans: 0,
            seq: 0,
        };
        match self.clients.iter().position(|x| x.user == user) {
            Some(i) => {
                self.clients[i] = c;
                i
            }
            None => {
                self.clients.push(c);
                self.clients.len() - 1
            }
        }
    }

    fn join(&mut self, i: usize) {
        let g = cs(GROUP);
        // SAFETY: valid C string.
        assert_eq!(unsafe { fl::FL_join(self.clients[i].mbox, g.as_ptr()) }, 0, "FL_join");
        self.clients[i].in_group = true;
    }

    fn leave(&mut self, i: usize) {
        let g = cs(GROUP);
        // SAFETY: valid C string.
        assert_eq!(unsafe { fl::FL_leave(self.clients[i].mbox, g.as_ptr()) }, 0, "FL_leave");
        self.clients[i].leaving = true;
    }

    /// Send one tagged message if in a view: body = view id + sequence.
    fn send(&mut self, i: usize, svc: i32) -> bool {
        let c = &mut self.clients[i];
        let Some((gid, _)) = &c.view else { return false };
        let mut body = gid.to_vec();
        body.extend_from_slice(&c.seq.to_le_bytes());
        let g = cs(GROUP);
        // SAFETY: valid string and buffer.
        let r = unsafe {
            fl::FL_multicast(c.mbox, svc, g.as_ptr(), 1, body.len() as c_int, body.as_ptr() as *const c_char)
        };
        if r == body.len() as i32 {
            c.seq += 1;
            true
        } else {
            assert!(r == ILLEGAL_STATE || (c.leaving && r == ILLEGAL_GROUP), "{}: FL_multicast {r}", c.user);
            false
        }
    }

    /// SP-level kill: the daemon sees the connection vanish, as for a killed process.
    fn kill(&mut self, i: usize) {
        let c = &mut self.clients[i];
        // SAFETY: plain call on our own mailbox.
        unsafe { spread_ffi::sp::SP_kill(c.mbox) };
        c.alive = false;
        c.in_group = false;
        c.view = None;
    }

    fn disconnect(&mut self, i: usize) {
        let c = &mut self.clients[i];
        // SAFETY: plain call.
        assert_eq!(unsafe { fl::FL_disconnect(c.mbox) }, 0);
        c.alive = false;
        c.in_group = false;
        c.view = None;
    }

    /// Receive everything available now, answering flush requests.
    fn drain(&mut self) {
        for i in 0..self.clients.len() {
            for _ in 0..10_000 {
                if !self.clients[i].alive || self.clients[i].external {
                    break;
                }
                let got = recv_nb(self.clients[i].mbox);
                if got.ret == WOULD_BLOCK {
                    break;
                }
                self.handle(i, got);
            }
        }
    }

    fn handle(&mut self, i: usize, got: Got) {
        let g = cs(GROUP);
        let c = &mut self.clients[i];
        if got.ret == ILLEGAL_GROUP && c.leaving {
            return; // the original's answer to a cascade reaching a flushed leaver
        }
        assert!(got.ret >= 0, "{}: FL_receive {}", c.user, got.ret);
        if got.service & FLUSH_REQ != 0 {
            c.flush_reqs += 1;
            // SAFETY: valid C string.
            let r = unsafe { fl::FL_flush(c.mbox, g.as_ptr()) };
            assert!(r == 0 || (c.leaving && r == ILLEGAL_GROUP), "{}: FL_flush {r}", c.user);
        } else if got.service & TRANSITION != 0 {
            c.trans += 1;
        } else if got.service & REG_MEMB != 0 {
            let b = &got.body;
            assert!(b.len() >= 16, "FL membership body");
            let n = i32::from_ne_bytes(b[12..16].try_into().unwrap()) as usize;
            assert_eq!(b.len(), 16 + 32 * n, "pre-4.0 FL body");
            let gid: Gid = b[..12].try_into().unwrap();
            assert!(got.groups.contains(&c.private), "{} not in its own view", c.user);
            let prev = self.seen.entry(gid).or_insert_with(|| got.groups.clone());
            assert_eq!(prev, &got.groups, "two member lists for one view");
            c.views.push((gid, got.groups.clone(), got.service));
            c.view = Some((gid, got.groups));
        } else if got.service & CAUSED_BY_LEAVE != 0 && got.service & 0x3f == 0 {
            c.view = None;
            c.in_group = false;
            c.leaving = false;
        } else if got.body.len() == 16 {
            // a World message: [view id][sequence]
            let gid: Gid = got.body[..12].try_into().unwrap();
            let seq = u32::from_le_bytes(got.body[12..16].try_into().unwrap());
            let cur = c.view.as_ref().map(|v| v.0);
            assert_eq!(
                Some(gid),
                cur,
                "{}: message from {} delivered outside the view it was sent in",
                c.user,
                got.sender
            );
            let members = &self.seen[&gid];
            assert!(members.contains(&got.sender), "sender outside the view");
            c.data.push((got.sender, gid, seq));
        }
    }

    fn fds(&self) -> Vec<libc::pollfd> {
        self.clients
            .iter()
            .filter(|c| c.alive && !c.external)
            .map(|c| libc::pollfd { fd: c.mbox, events: libc::POLLIN, revents: 0 })
            .collect()
    }

    /// Drain and wait (poll on the mailboxes) until `done` holds; bounded.
    fn pump_until(&mut self, what: &str, done: impl Fn(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..100_000 {
            self.drain();
            if done(self) {
                return;
            }
            let now = Instant::now();
            assert!(now < deadline, "{what}: not reached within 30 s; views: {:?}", self.summary());
            let mut fds = self.fds();
            let ms = (deadline - now).as_millis().min(500) as c_int;
            // SAFETY: a valid array of pollfds.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms.max(1)) };
        }
        panic!("{what}: pump loop bound");
    }

    fn summary(&self) -> Vec<(String, Option<Vec<String>>, bool)> {
        self.clients.iter().map(|c| (c.user.clone(), c.view.as_ref().map(|v| v.1.clone()), c.in_group)).collect()
    }

    fn names(&self, idx: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = idx.iter().map(|i| self.clients[*i].private.clone()).collect();
        v.sort();
        v
    }

    /// Every listed client has exactly this member set as its current view.
    fn all_see(&self, idx: &[usize]) -> bool {
        let want = self.names(idx);
        idx.iter().all(|i| self.clients[*i].view.as_ref().map(|v| v.1.clone()) == Some(want.clone()))
    }

    /// The group members we expect from the calls made so far.
    fn expected_members(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|i| self.clients[*i].alive && self.clients[*i].in_group && !self.clients[*i].leaving)
            .collect()
    }
}

fn daemon(port: u16) -> Daemon {
    Daemon::start_single("d1", port, "").unwrap_or_else(|e| panic!("daemon on {port}: {e}"))
}

#[test]
fn two_clients_through_join_leave_disconnect_and_kill_with_traffic() {
    let d = daemon(24020);
    let mut w = World::new(d.port, &["fa", "fb", "fc"]);
    let (a, b, c) = (0, 1, 2);
    w.join(a);
    w.pump_until("a alone", |w| w.all_see(&[a]));
    assert_eq!(w.clients[a].views[0].2, REG_MEMB | 0x100);

    // b joins while a sends: those messages belong to view {a} only.
    w.join(b);
    for _ in 0..5 {
        assert!(w.send(a, AGREED));
    }
    w.pump_until("a and b", |w| w.all_see(&[a, b]));
    let in_a_only = w.clients[a].views[0].0;
    assert_eq!(w.clients[a].data.iter().filter(|d| d.1 == in_a_only).count(), 5);
    assert!(w.clients[b].data.is_empty(), "b must not see traffic of a view it was not in");
    assert_eq!(w.clients[a].flush_reqs, 1);

    // traffic in the shared view
    for k in 0..20 {
        w.send(if k % 2 == 0 { a } else { b }, [FIFO, RELIABLE, AGREED, SAFE][k % 4]);
    }
    w.pump_until("20 messages each", |w| w.clients[a].data.len() >= 5 + 20 && w.clients[b].data.len() >= 20);

    // b leaves with traffic in flight from both
    w.send(a, FIFO);
    w.send(b, AGREED);
    w.leave(b);
    w.send(a, SAFE);
    w.pump_until("b left", |w| w.all_see(&[a]) && !w.clients[b].in_group);
    assert!(w.clients[a].trans >= 1, "a transitional signal before the shrunk view");
    assert_eq!(w.clients[a].views.last().unwrap().2, REG_MEMB | CAUSED_BY_LEAVE);

    // c joins, sends, and is killed with its traffic in flight
    w.join(c);
    w.pump_until("a and c", |w| w.all_see(&[a, c]));
    let ac = w.clients[a].view.as_ref().unwrap().0;
    for _ in 0..5 {
        assert!(w.send(c, FIFO));
    }
    w.kill(c);
    w.send(a, AGREED);
    w.pump_until("c gone", |w| w.all_see(&[a]) && w.clients[a].views.len() >= 5);
    let from_c = w.clients[a].data.iter().filter(|d| d.0 == w.clients[c].private).count();
    assert!(from_c <= 5);
    assert!(w.clients[a].data.iter().filter(|d| d.0 == w.clients[c].private).all(|d| d.1 == ac));
    assert_eq!(w.clients[a].views.last().unwrap().2, REG_MEMB | 0x400, "disconnect");

    // b comes back, then disconnects properly
    w.join(b);
    w.pump_until("a and b again", |w| w.all_see(&[a, b]));
    w.send(b, SAFE);
    w.disconnect(b);
    w.pump_until("b disconnected", |w| w.all_see(&[a]) && w.clients[a].views.len() >= 7);
    w.disconnect(a);
    drop(d);
}

#[test]
fn three_clients_churn_with_cascades_keep_one_history() {
    let d = daemon(24030);
    let users = ["ga", "gb", "gc"];
    let mut w = World::new(d.port, &users);
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut kills = 0;
    // ga stays in the group throughout: a group that empties is re-created by
    // the daemon with view ids starting over, which would make ids ambiguous.
    w.join(0);
    w.pump_until("anchor", |w| w.all_see(&[0]));
    for step in 0..400 {
        let i = next(3) as usize;
        if i == 0 {
            for _ in 0..next(3) + 1 {
                w.send(0, [FIFO, RELIABLE, AGREED, SAFE][next(4) as usize]);
            }
            continue;
        }
        match next(12) {
            0 | 1 if w.clients[i].alive && !w.clients[i].in_group => w.join(i),
            2 if w.clients[i].alive && w.clients[i].view.is_some() && !w.clients[i].leaving => w.leave(i),
            3 if next(2) == 0 && w.clients[i].alive => {
                // kill or disconnect with traffic in flight, then come back
                for j in 0..3 {
                    w.send(j, FIFO);
                }
                if kills % 2 == 0 {
                    w.kill(i);
                } else {
                    w.disconnect(i);
                }
                kills += 1;
                w.drain();
                // a fresh name: the daemon may not have noticed the old session's end yet
                let u = format!("{}{}", users[i], kills);
                w.reconnect(i, &u);
            }
            4..=7 => {
                for _ in 0..next(4) + 1 {
                    w.send(i, [FIFO, RELIABLE, AGREED, SAFE][next(4) as usize]);
                }
            }
            8 => w.drain(),
            _ => {}
        }
        if step % 10 == 9 {
            // let the group settle now and then
            w.pump_until("settle", |w| {
                let m = w.expected_members();
                m.is_empty() || w.all_see(&m)
            });
        }
    }
    w.pump_until("final settle", |w| {
        let m = w.expected_members();
        m.is_empty() || w.all_see(&m)
    });
    let total_views: usize = w.clients.iter().map(|c| c.views.len()).sum();
    let total_data: usize = w.clients.iter().map(|c| c.data.len()).sum();
    let network: usize = w.clients.iter().map(|c| c.views.iter().filter(|v| v.2 & 0x800 != 0).count()).sum();
    let trans: usize = w.clients.iter().map(|c| c.trans).sum();
    eprintln!("churn: {total_views} views ({network} collapsed to network), {trans} transitional, {total_data} messages, {kills} kills/disconnects");
    assert!(total_views >= 10 && total_data >= 20, "exercised: {total_views} views, {total_data} messages");
    // Same view sequence: any two clients list their common views in the same order.
    for x in &w.clients {
        for y in &w.clients {
            let common: BTreeSet<Gid> =
                x.views.iter().map(|v| v.0).filter(|g| y.views.iter().any(|v| v.0 == *g)).collect();
            let ox: Vec<Gid> = x.views.iter().map(|v| v.0).filter(|g| common.contains(g)).collect();
            let oy: Vec<Gid> = y.views.iter().map(|v| v.0).filter(|g| common.contains(g)).collect();
            assert_eq!(ox, oy, "{} and {} installed common views in different orders", x.user, y.user);
        }
    }
    for c in 0..w.clients.len() {
        if w.clients[c].alive {
            w.disconnect(c);
        }
    }
    drop(d);
}

/// FL_disconnect from another thread while a receiver is blocked in
/// FL_receive: both return (bounded), the receiver with the session gone.
#[test]
fn disconnect_unblocks_a_blocked_receiver() {
    let d = daemon(24040);
    let mut w = World::new(d.port, &["ha"]);
    w.join(0);
    w.pump_until("alone", |w| w.all_see(&[0]));
    let mbox = w.clients[0].mbox;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut svc = 0;
        let mut sender = [0 as c_char; 32];
        let mut groups = [[0 as c_char; 32]; 4];
        let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
        let mut body = [0u8; 64];
        // SAFETY: buffers as announced.
        let r = unsafe {
            fl::FL_receive(
                mbox,
                &mut svc,
                sender.as_mut_ptr(),
                4,
                &mut ng,
                groups.as_mut_ptr(),
                &mut mt,
                &mut em,
                64,
                body.as_mut_ptr() as *mut c_char,
                &mut more,
            )
        };
        let _ = tx.send(r);
    });
    let (tx2, rx2) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: plain call.
        let _ = tx2.send(unsafe { fl::FL_disconnect(mbox) });
    });
    let dr = rx2.recv_timeout(Duration::from_secs(15)).expect("FL_disconnect returned");
    assert_eq!(dr, 0);
    let rr = rx.recv_timeout(Duration::from_secs(15)).expect("blocked FL_receive returned");
    assert!(rr == -8 || rr == -11, "receiver got {rr}");
    // SAFETY: plain call.
    assert_eq!(unsafe { fl::FL_more_msgs(mbox) }, -11);
    drop(d);
}

/// A receiver blocked in FL_receive does not hold the connection: another
/// thread can send meanwhile, and the blocked receiver gets that message.
#[test]
fn sending_while_another_thread_is_blocked_receiving() {
    let d = daemon(24050);
    let mut w = World::new(d.port, &["ia"]);
    w.join(0);
    w.pump_until("alone", |w| w.all_see(&[0]));
    let mbox = w.clients[0].mbox;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut svc = 0;
        let mut sender = [0 as c_char; 32];
        let mut groups = [[0 as c_char; 32]; 4];
        let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
        let mut body = [0u8; 64];
        // SAFETY: buffers as announced.
        let r = unsafe {
            fl::FL_receive(
                mbox,
                &mut svc,
                sender.as_mut_ptr(),
                4,
                &mut ng,
                groups.as_mut_ptr(),
                &mut mt,
                &mut em,
                64,
                body.as_mut_ptr() as *mut c_char,
                &mut more,
            )
        };
        let _ = tx.send((r, mt, body[..r.clamp(0, 64) as usize].to_vec()));
    });
    let (tx2, rx2) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let g = cs(GROUP);
        // SAFETY: valid string and buffer.
        let r = unsafe { fl::FL_multicast(mbox, AGREED, g.as_ptr(), 33, 4, b"ping".as_ptr() as *const c_char) };
        let _ = tx2.send(r);
    });
    assert_eq!(rx2.recv_timeout(Duration::from_secs(15)).expect("FL_multicast returned"), 4);
    let (r, mt, body) = rx.recv_timeout(Duration::from_secs(15)).expect("receiver woke");
    assert_eq!((r, mt, body.as_slice()), (4, 33, &b"ping"[..]));
    w.disconnect(0);
    drop(d);
}

/// Four threads send on one connection while a fifth receives (blocking)
/// and a second member joins and leaves meanwhile: every message arrives
/// once, per-thread order is kept, nothing deadlocks.
#[test]
fn threads_sending_and_receiving_on_one_connection() {
    let d = daemon(24060);
    let mut w = World::new(d.port, &["ja", "jb"]);
    w.join(0);
    w.pump_until("alone", |w| w.all_see(&[0]));
    let mbox = w.clients[0].mbox;
    w.clients[0].external = true;
    const PER: u32 = 150;
    let (tx, rx) = std::sync::mpsc::channel();
    let churn_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn_done2 = churn_done.clone();
    let receiver = std::thread::spawn(move || {
        let mut seen: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut flushes = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        // keep receiving (and answering flush requests) until every message is
        // in and the membership churn is over
        while (seen.values().map(|v| v.len()).sum::<usize>() < 4 * PER as usize
            || !churn_done2.load(std::sync::atomic::Ordering::SeqCst))
            && Instant::now() < deadline
        {
            // wait (bounded, short) for something to read, then receive without blocking
            let slice = (Instant::now() + Duration::from_millis(100)).min(deadline);
            // SAFETY: plain call.
            if unsafe { fl::FL_more_msgs(mbox) } == 0 && !compat_tests::net::poll_readable(mbox, slice) {
                continue;
            }
            let mut svc = DONT_BLOCK;
            let mut sender = [0 as c_char; 32];
            let mut groups = [[0 as c_char; 32]; 8];
            let (mut ng, mut mt, mut em, mut more) = (0, 0i16, 0, 0);
            let mut body = [0u8; 64];
            // SAFETY: buffers as announced.
            let r = unsafe {
                fl::FL_receive(
                    mbox,
                    &mut svc,
                    sender.as_mut_ptr(),
                    8,
                    &mut ng,
                    groups.as_mut_ptr(),
                    &mut mt,
                    &mut em,
                    64,
                    body.as_mut_ptr() as *mut c_char,
                    &mut more,
                )
            };
            if r == WOULD_BLOCK {
                continue;
            }
            assert!(r >= 0, "FL_receive {r}");
            if svc & FLUSH_REQ != 0 {
                let g = cs(GROUP);
                // SAFETY: valid string.
                assert_eq!(unsafe { fl::FL_flush(mbox, g.as_ptr()) }, 0);
                flushes += 1;
            } else if svc & 0x3f != 0 && mt == 77 {
                let t = u32::from_le_bytes(body[..4].try_into().unwrap());
                let k = u32::from_le_bytes(body[4..8].try_into().unwrap());
                seen.entry(t).or_default().push(k);
            }
        }
        let _ = tx.send((seen, flushes));
    });
    let senders: Vec<_> = (0..4u32)
        .map(|t| {
            std::thread::spawn(move || {
                let g = cs(GROUP);
                let mut k = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while k < PER && Instant::now() < deadline {
                    let mut body = t.to_le_bytes().to_vec();
                    body.extend_from_slice(&k.to_le_bytes());
                    // SAFETY: valid string and buffer.
                    let r =
                        unsafe { fl::FL_multicast(mbox, AGREED, g.as_ptr(), 77, 8, body.as_ptr() as *const c_char) };
                    if r == 8 {
                        k += 1;
                    } else {
                        // flushed and waiting for the next view: try again
                        assert_eq!(r, ILLEGAL_STATE, "FL_multicast");
                        std::thread::yield_now();
                    }
                }
                k
            })
        })
        .collect();
    // membership churn from the second client meanwhile
    for _ in 0..3 {
        w.join(1);
        w.pump_until("jb in", |w| w.clients[1].view.as_ref().is_some_and(|v| v.1.len() == 2));
        w.leave(1);
        w.pump_until("jb out", |w| !w.clients[1].in_group);
    }
    churn_done.store(true, std::sync::atomic::Ordering::SeqCst);
    for s in senders {
        assert_eq!(s.join().expect("sender thread"), PER);
    }
    let (seen, flushes) = rx.recv_timeout(Duration::from_secs(60)).expect("receiver finished");
    receiver.join().expect("receiver thread");
    // at least one per round (a leave and the next join may cascade into one)
    assert!(flushes >= 3, "the receiving thread answered {flushes} flush requests");
    for t in 0..4 {
        assert_eq!(
            seen.get(&t).cloned().unwrap_or_default(),
            (0..PER).collect::<Vec<_>>(),
            "thread {t}: each once, in order"
        );
    }
    w.disconnect(1);
    // SAFETY: plain call.
    assert_eq!(unsafe { fl::FL_disconnect(mbox) }, 0);
    drop(d);
}
