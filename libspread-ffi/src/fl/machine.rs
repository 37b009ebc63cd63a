//! The Flush layer proper: per-connection and per-group state machines over an
//! abstract SP layer ([`SpApi`]). Everything here is safe Rust; the C shells in
//! `fl.rs` only translate pointers into the types used here.
//!
//! Vocabulary (client spec §4):
//! * an *SP view* is a membership delivered by the daemon (extended virtual
//!   synchrony); an *FL view* is one the application has agreed to install;
//! * a *change* is an SP view the FL layer has heard of (through its membership
//!   message or through a peer's FLUSH_OK) but not installed yet;
//! * a group is in one of four phases: `Steady`; `Authorize` (a change is
//!   pending, the application has been asked to flush); `Agree` (flushed, waiting
//!   for every member's FLUSH_OK); `Verify` (new view installed, waiting for every
//!   member's FLUSH_RECV).
//!
//! Messages for the application are queued per connection ([`BufMsg`]) and handed
//! out by `receive` with the same short-buffer rules as the original library.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use spread_wire::consts::*;

/// A 32-byte group / member name field.
pub type Name = [u8; MAX_GROUP_NAME];
/// A `group_id` as three native integers.
pub type Gid = [i32; 3];

/// Reserved `mess_type` values carried between FL peers (fl_p.h).
pub const FLUSH_OK_MESS: i16 = -32768;
pub const FLUSH_RECV_MESS: i16 = -32767;
pub const VULNERABLE_MESS: i16 = -32766;
/// Smallest `mess_type` an application may use.
pub const FL_MIN_LEGAL_MESS_TYPE: i16 = -32765;
/// At most this many user scatter elements (one slot is kept for FL trailers).
pub const FL_MAX_SCATTER_ELEMENTS: usize = MAX_CLIENT_SCATTER_ELEMENTS - 1;

/// A change known only through FLUSH_OKs is forgotten after this many SP
/// membership events in its group.
const FLOK_AGE_LIMIT: u32 = 200;
/// Per-message bookkeeping the original counts in `FL_poll` (the size of its
/// buffered-message record on LP64).
pub const BUFF_MESS_OVERHEAD: i64 = 88;
const GID_LEN: usize = 12;
/// Sizes beyond anything a daemon can send (its limit is 144000 bytes and a
/// group list as long as a group's membership): with DROP_RECV the original
/// would allocate whatever a header claims; we refuse.
const HOSTILE_BODY: usize = 1 << 20;
const HOSTILE_GROUPS: usize = 1 << 16;

const SVC_FIFO: i32 = FIFO_MESS as i32;
const SUBGROUP: i32 = SUBGROUP_CAST as i32;
const ILLEGAL_SEND_BITS: i32 = (FLUSH_REQ_MESS | MEMBERSHIP_MESS | ENDIAN_RESERVED | RESERVED) as i32;

/// Copy a name up to its first NUL (at most 32 bytes) into a zero-padded field;
/// two names are "equal" for FL exactly when `strncmp(a, b, 32) == 0`.
pub fn name_key(raw: &[u8]) -> Name {
    let mut n = [0u8; MAX_GROUP_NAME];
    for (dst, &b) in n.iter_mut().zip(raw.iter()) {
        if b == 0 {
            break;
        }
        *dst = b;
    }
    n
}

/// The bytes of a name before its NUL.
pub fn name_str(n: &Name) -> &[u8] {
    let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
    &n[..end]
}

fn is_private_group(n: &Name) -> bool {
    name_str(n).contains(&b'#')
}

fn gid_bytes(g: &Gid) -> [u8; GID_LEN] {
    let mut b = [0u8; GID_LEN];
    for (i, v) in g.iter().enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    b
}

fn gid_from(b: &[u8], swap: bool) -> Gid {
    let mut g = [0i32; 3];
    for (i, v) in g.iter_mut().enumerate() {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[i * 4..i * 4 + 4]);
        let x = i32::from_ne_bytes(w);
        *v = if swap { x.swap_bytes() } else { x };
    }
    g
}

// ------------------------------------------------------------------------------------------
// The SP layer as FL sees it
// ------------------------------------------------------------------------------------------

/// What one `SP_scat_receive` call produced (never called with `DROP_RECV`).
#[derive(Clone, Debug, Default)]
pub struct SpRecv {
    /// The return value: body length, or an error code.
    pub ret: i32,
    pub service: i32,
    pub sender: Name,
    /// As `SP_scat_receive` reports it (negative = needed size on GROUPS_TOO_SHORT).
    pub num_groups: i32,
    /// The names actually received (empty on errors).
    pub groups: Vec<Name>,
    pub mess_type: i16,
    pub endian_mismatch: i32,
    /// The bytes actually received (empty on errors).
    pub body: Vec<u8>,
}

/// The SP functions FL is built on, with their C semantics.
pub trait SpApi: Send + Sync {
    /// `SP_version`.
    fn version(&self) -> (i32, i32, i32);
    /// `SP_connect(daemon, user, priority, 1, ...)`: (result, mailbox, private group).
    fn connect(&self, daemon: Option<&CStr>, user: Option<&CStr>, priority: i32) -> (i32, i32, Name);
    /// `SP_disconnect`.
    fn disconnect(&self, mbox: i32) -> i32;
    /// `SP_join`; `group` is the name without its NUL (at most 32 bytes are passed;
    /// 32 bytes mean "too long" to SP).
    fn join(&self, mbox: i32, group: &[u8]) -> i32;
    /// `SP_leave`, same convention as `join`.
    fn leave(&self, mbox: i32, group: &[u8]) -> i32;
    /// `SP_scat_multicast` to one group.
    fn multicast(&self, mbox: i32, service: i32, group: &Name, mess_type: i16, parts: &[&[u8]]) -> i32;
    /// `SP_multigroup_scat_multicast`, names passed as 32-byte fields verbatim.
    fn multigroup_multicast(&self, mbox: i32, service: i32, groups: &[Name], mess_type: i16, parts: &[&[u8]]) -> i32;
    /// `SP_scat_receive` without `DROP_RECV` into buffers of the given capacities.
    fn receive(&self, mbox: i32, max_groups: usize, body_cap: usize) -> SpRecv;
    /// `SP_poll`.
    fn poll(&self, mbox: i32) -> i32;
}

/// The user data of a send, as the C shell could read it.
pub enum Payload<'a> {
    /// The scatter elements, in order.
    Parts(Vec<&'a [u8]>),
    /// The scatter could not be read safely; the send fails with this code once
    /// the FL checks have passed (where SP would have looked at it).
    Invalid(i32),
}

// ------------------------------------------------------------------------------------------
// Messages for the application
// ------------------------------------------------------------------------------------------

/// A message waiting to be handed to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufMsg {
    pub service: i32,
    pub sender: Name,
    pub groups: Vec<Name>,
    pub mess_type: i16,
    pub endian_mismatch: i32,
    pub body: Vec<u8>,
    /// Came straight off the wire and would have been written straight into the
    /// caller's buffers by the original (only matters for one DROP_RECV detail).
    direct: bool,
}

impl BufMsg {
    fn signal(service: u32, group: &Name) -> BufMsg {
        BufMsg {
            service: service as i32,
            sender: *group,
            groups: Vec::new(),
            mess_type: 0,
            endian_mismatch: 0,
            body: Vec::new(),
            direct: false,
        }
    }

    fn cost(&self) -> i64 {
        BUFF_MESS_OVERHEAD + (MAX_GROUP_NAME * self.groups.len() + self.body.len()) as i64
    }
}

/// What the caller's receive buffers look like.
#[derive(Clone, Copy, Debug)]
pub struct RecvArgs {
    /// `*serv_type` on entry (DROP_RECV and DONT_BLOCK are looked at).
    pub service_in: i32,
    pub max_groups: i32,
    /// Total capacity of the caller's scatter.
    pub body_cap: usize,
}

/// What `FL_scat_receive` writes back; `None` fields are left untouched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecvOut {
    pub ret: i32,
    pub service: Option<i32>,
    pub sender: Option<Name>,
    pub num_groups: Option<i32>,
    /// Names to store from `groups[0]` on.
    pub groups: Vec<Name>,
    pub mess_type: Option<i16>,
    pub endian_mismatch: Option<i32>,
    /// Bytes to store into the caller's scatter from its start.
    pub body: Vec<u8>,
    pub more_msgs: Option<i32>,
}

impl RecvOut {
    fn error(ret: i32) -> RecvOut {
        RecvOut { ret, ..RecvOut::default() }
    }
}

/// Hand the message to the caller's buffers. Returns the outputs and whether the
/// message is consumed (it stays queued when the buffers are too short and
/// DROP_RECV was not asked for).
fn to_user(m: &BufMsg, args: &RecvArgs) -> (RecvOut, bool) {
    let drop_recv = args.service_in & DROP_RECV as i32 != 0;
    let max_groups = args.max_groups.max(0) as usize;
    let n = m.groups.len();
    let len = m.body.len();
    let copied = len.min(args.body_cap);
    let mut out = RecvOut {
        service: Some(m.service),
        mess_type: Some(m.mess_type),
        body: m.body[..copied].to_vec(),
        ..RecvOut::default()
    };
    let body_short = copied != len;
    let groups_short = n > max_groups;
    if !body_short && !groups_short {
        out.ret = len as i32;
        out.num_groups = Some(n as i32);
        out.sender = Some(m.sender);
        out.groups = m.groups.clone();
        out.endian_mismatch = Some(m.endian_mismatch);
        return (out, true);
    }
    if !drop_recv {
        // Report the sizes needed; the message stays at the head of the queue.
        out.endian_mismatch = Some(if body_short { -(len as i32) } else { 0 });
        out.num_groups = Some(if groups_short { -(n as i32) } else { 0 });
        out.ret = if groups_short { GROUPS_TOO_SHORT } else { BUFFER_TOO_SHORT };
        return (out, false);
    }
    out.ret = if groups_short { GROUPS_TOO_SHORT } else { BUFFER_TOO_SHORT };
    out.num_groups = Some(if groups_short { -(n as i32) } else { n as i32 });
    out.sender = Some(m.sender);
    out.groups = m.groups[..n.min(max_groups)].to_vec();
    // A subgroupcast read straight off the wire keeps its reference group in
    // the last slot the caller has, as the original's direct path does.
    if groups_short && m.direct && m.service & SUBGROUP != 0 && max_groups > 0 {
        if let Some(r) = m.groups.last() {
            out.groups[max_groups - 1] = *r;
        }
    }
    out.endian_mismatch = Some(m.endian_mismatch);
    (out, true)
}

// ------------------------------------------------------------------------------------------
// Views, changes, groups
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct View {
    gid: Gid,
    memb_type: i32,
    /// A transitional signal was delivered (or suppressed) in this view.
    in_trans: bool,
    /// Members in the order of the SP membership message.
    members: Vec<Name>,
    /// Members still present (shrinks as members leave).
    curr: HashSet<Name>,
    my_index: i16,
}

impl View {
    fn new(gid: Gid) -> View {
        View { gid, memb_type: 0, in_trans: false, members: Vec::new(), curr: HashSet::new(), my_index: -1 }
    }

    fn fill(&mut self, memb_type: i32, members: &[Name], my_index: i16) {
        self.memb_type = memb_type;
        self.members = members.to_vec();
        self.curr = members.iter().copied().collect();
        self.my_index = my_index;
    }

    fn has_member(&self, n: &Name) -> bool {
        self.members.contains(n)
    }
}

/// An SP view not installed yet.
#[derive(Debug)]
struct Change {
    serial: u64,
    view: View,
    /// Its SP membership message has arrived (else it is known only from FLUSH_OKs).
    memb_recvd: bool,
    age: u32,
    /// The joiner / leaver / disconnected member for join, leave, disconnect.
    delta: Option<Name>,
    flok_senders: HashSet<Name>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Joining,
    Joined,
    Leaving,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Steady,
    Authorize,
    Agree,
    Verify,
}

#[derive(Debug)]
struct Group {
    name: Name,
    mstate: Membership,
    vstate: Phase,
    /// Serial of the change being worked on (always the head of `memb_queue`).
    curr_change: Option<u64>,
    /// The latest SP view: `None` = the FL view, else a change in `pending`.
    sp_view: Option<Gid>,
    fl_view: View,
    flush_recvs: usize,
    /// Vulnerable messages for the next view, held until it is installed.
    held: VecDeque<BufMsg>,
    /// Changes whose membership arrived, oldest first.
    memb_queue: VecDeque<Gid>,
    pending: BTreeMap<Gid, Change>,
    next_serial: u64,
}

impl Group {
    /// A group this connection is joining: it flushes automatically (it starts in
    /// `Agree`) until its first view, which so far holds only itself.
    fn new(name: Name, me: Name) -> Group {
        let mut v = View::new([0; 3]);
        v.fill(0, &[me], 0);
        v.in_trans = true;
        Group {
            name,
            mstate: Membership::Joining,
            vstate: Phase::Agree,
            curr_change: None,
            sp_view: None,
            fl_view: v,
            flush_recvs: 0,
            held: VecDeque::new(),
            memb_queue: VecDeque::new(),
            pending: BTreeMap::new(),
            next_serial: 1,
        }
    }

    fn change_entry(&mut self, gid: Gid) -> &mut Change {
        let serial = self.next_serial;
        let e = self.pending.entry(gid).or_insert_with(|| Change {
            serial,
            view: View::new(gid),
            memb_recvd: false,
            age: 0,
            delta: None,
            flok_senders: HashSet::new(),
        });
        if e.serial == serial {
            self.next_serial += 1;
        }
        e
    }

    fn current(&self) -> Option<&Change> {
        let s = self.curr_change?;
        let gid = self.memb_queue.front()?;
        self.pending.get(gid).filter(|c| c.serial == s)
    }

    fn sp_view_mut(&mut self) -> &mut View {
        match self.sp_view {
            Some(gid) if self.pending.contains_key(&gid) => &mut self.pending.get_mut(&gid).expect("checked").view,
            _ => &mut self.fl_view,
        }
    }

    fn sp_view(&self) -> &View {
        match self.sp_view.and_then(|g| self.pending.get(&g)) {
            Some(c) => &c.view,
            None => &self.fl_view,
        }
    }
}

/// Where delivered messages go, plus what handlers need to send.
struct Outbox {
    mbox: i32,
    private: Name,
    queue: VecDeque<BufMsg>,
    bytes: i64,
    /// An error to hand to the caller of receive instead of a message.
    fatal: Option<i32>,
}

impl Outbox {
    fn push(&mut self, m: BufMsg) {
        self.bytes += m.cost();
        self.queue.push_back(m);
    }

    /// A message just read from SP: it is "direct" when nothing is queued before it.
    fn push_received(&mut self, mut m: BufMsg) {
        m.direct = self.queue.is_empty();
        self.push(m);
    }

    fn pop(&mut self) {
        if let Some(m) = self.queue.pop_front() {
            self.bytes -= m.cost();
        }
    }
}

/// A message read from SP with the FL trailers taken off.
#[derive(Clone, Debug)]
struct RxMsg {
    msg: BufMsg,
    vulnerable: bool,
    dst_gid: Gid,
}

struct ConnState {
    groups: HashMap<Name, Group>,
    out: Outbox,
}

struct Reserve {
    count: usize,
}

/// One FL connection.
struct Conn {
    reserve: Mutex<Reserve>,
    released: Condvar,
    disconnecting: AtomicBool,
    /// One receiver at a time.
    recv_lock: Mutex<()>,
    state: Mutex<ConnState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A claim that keeps a connection alive until dropped; `FL_disconnect` waits for
/// every claim to go away before it returns.
struct Claim {
    conn: Arc<Conn>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut r = lock(&self.conn.reserve);
        r.count = r.count.saturating_sub(1);
        if r.count == 0 && self.conn.disconnecting.load(Ordering::SeqCst) {
            self.conn.released.notify_all();
        }
    }
}

// ------------------------------------------------------------------------------------------
// The library
// ------------------------------------------------------------------------------------------

/// All FL connections of the process, over one SP implementation.
pub struct FlLib<S: SpApi> {
    pub sp: S,
    conns: Mutex<HashMap<i32, Arc<Conn>>>,
    initialised: AtomicBool,
}

impl<S: SpApi> FlLib<S> {
    pub fn new(sp: S) -> FlLib<S> {
        FlLib { sp, conns: Mutex::new(HashMap::new()), initialised: AtomicBool::new(false) }
    }

    /// `FL_lib_init`: 0 the first time, ILLEGAL_STATE afterwards. Nothing depends
    /// on it here (the tables are always ready).
    pub fn lib_init(&self) -> i32 {
        if self.initialised.swap(true, Ordering::SeqCst) {
            ILLEGAL_STATE
        } else {
            0
        }
    }

    fn claim(&self, mbox: i32) -> Option<Claim> {
        let conns = lock(&self.conns);
        let conn = conns.get(&mbox)?.clone();
        let mut r = lock(&conn.reserve);
        drop(conns);
        if conn.disconnecting.load(Ordering::SeqCst) {
            return None;
        }
        r.count += 1;
        drop(r);
        Some(Claim { conn })
    }

    /// Run `f` on the locked state of `mbox`, or return ILLEGAL_SESSION.
    fn with_conn<R>(&self, mbox: i32, f: impl FnOnce(&mut ConnState) -> R) -> Result<R, i32> {
        let claim = self.claim(mbox).ok_or(ILLEGAL_SESSION)?;
        let mut st = lock(&claim.conn.state);
        if claim.conn.disconnecting.load(Ordering::SeqCst) {
            return Err(ILLEGAL_SESSION);
        }
        Ok(f(&mut st))
    }

    fn sp_version_ok(&self) -> bool {
        let (maj, min, _) = self.sp.version();
        let div = if min < 100 { 100.0f32 } else { 1000.0f32 };
        (maj as f32 + min as f32 / div) >= 3.12f32
    }

    /// `FL_connect`: (result, mailbox, private group name).
    pub fn connect(&self, daemon: Option<&CStr>, user: Option<&CStr>, priority: i32) -> (i32, i32, Name) {
        if !self.sp_version_ok() {
            return (REJECT_VERSION, -1, [0; 32]);
        }
        let (ret, mbox, private) = self.sp.connect(daemon, user, priority);
        if ret == ACCEPT_SESSION {
            let conn = Arc::new(Conn {
                reserve: Mutex::new(Reserve { count: 0 }),
                released: Condvar::new(),
                disconnecting: AtomicBool::new(false),
                recv_lock: Mutex::new(()),
                state: Mutex::new(ConnState {
                    groups: HashMap::new(),
                    out: Outbox { mbox, private: name_key(&private), queue: VecDeque::new(), bytes: 0, fatal: None },
                }),
            });
            lock(&self.conns).insert(mbox, conn);
        }
        (ret, mbox, private)
    }

    /// `FL_disconnect`: forget the connection, disconnect it at SP level (which
    /// also wakes a receiver blocked in SP), wait until no other thread uses it.
    pub fn disconnect(&self, mbox: i32) -> i32 {
        let conn = match lock(&self.conns).remove(&mbox) {
            Some(c) => c,
            None => return ILLEGAL_SESSION,
        };
        let mut r = lock(&conn.reserve);
        conn.disconnecting.store(true, Ordering::SeqCst);
        let ret = self.sp.disconnect(mbox);
        while r.count != 0 {
            r = conn.released.wait(r).unwrap_or_else(|e| e.into_inner());
        }
        ret
    }

    /// `FL_join`.
    pub fn join(&self, mbox: i32, group: &[u8]) -> i32 {
        let key = name_key(group);
        let ret = match self.with_conn(mbox, |st| {
            if st.groups.contains_key(&key) {
                ILLEGAL_GROUP
            } else {
                self.sp.join(mbox, group)
            }
        }) {
            Ok(r) => r,
            Err(e) => e,
        };
        // The original aborts on any other SP error here; we return it instead:
        // nothing was sent, so no peer can tell the difference.
        self.after(mbox, ret)
    }

    /// `FL_leave`.
    pub fn leave(&self, mbox: i32, group: &[u8]) -> i32 {
        let key = name_key(group);
        let ret = match self.with_conn(mbox, |st| match st.groups.get_mut(&key) {
            Some(g) if g.mstate == Membership::Joined => {
                g.mstate = Membership::Leaving;
                self.sp.leave(mbox, group)
            }
            _ => ILLEGAL_GROUP,
        }) {
            Ok(r) => r,
            Err(e) => e,
        };
        // As for join: an unexpected SP error is returned rather than aborting.
        self.after(mbox, ret)
    }

    /// `FL_flush`.
    pub fn flush(&self, mbox: i32, group: &[u8]) -> i32 {
        let key = name_key(group);
        let ret = match self.with_conn(mbox, |st| match st.groups.get_mut(&key) {
            Some(g) => int_flush(&self.sp, mbox, g),
            None => ILLEGAL_GROUP,
        }) {
            Ok(r) => r,
            Err(e) => e,
        };
        self.after(mbox, ret)
    }

    /// A connection whose SP session is gone is torn down.
    fn after(&self, mbox: i32, ret: i32) -> i32 {
        if ret == CONNECTION_CLOSED || ret == ILLEGAL_SESSION {
            self.disconnect(mbox);
        }
        ret
    }

    /// `FL_more_msgs`.
    pub fn more_msgs(&self, mbox: i32) -> i32 {
        self.with_conn(mbox, |st| st.out.queue.len() as i32).unwrap_or_else(|e| e)
    }

    /// `FL_poll`: bytes queued inside FL plus `SP_poll`.
    pub fn poll(&self, mbox: i32) -> i32 {
        self.with_conn(mbox, |st| (st.out.bytes + self.sp.poll(mbox) as i64) as i32).unwrap_or_else(|e| e)
    }

    /// The common send path of every `FL_*cast` function. `recvrs` are the
    /// subgroupcast receivers (ignored without SUBGROUP_CAST).
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &self,
        mbox: i32,
        service: i32,
        group: &Name,
        num_recvrs: i32,
        recvrs: &[Name],
        mess_type: i16,
        num_elements: usize,
        payload: Payload<'_>,
    ) -> i32 {
        let ret = match self.with_conn(mbox, |st| {
            send_checked(&self.sp, mbox, st, service, group, num_recvrs, recvrs, mess_type, num_elements, payload)
        }) {
            Ok(r) => r,
            Err(e) => e,
        };
        self.after(mbox, ret)
    }

    /// `FL_scat_receive`.
    pub fn receive(&self, mbox: i32, args: RecvArgs) -> RecvOut {
        if args.max_groups < 0 {
            return RecvOut::error(ILLEGAL_PARAM);
        }
        let out = match self.claim(mbox) {
            None => RecvOut::error(ILLEGAL_SESSION),
            Some(claim) => self.receive_claimed(&claim.conn, mbox, &args),
        };
        if out.ret == CONNECTION_CLOSED || out.ret == ILLEGAL_SESSION {
            self.disconnect(mbox);
        }
        out
    }

    fn receive_claimed(&self, conn: &Conn, mbox: i32, args: &RecvArgs) -> RecvOut {
        let blocking = args.service_in & DONT_BLOCK as i32 == 0;
        let _one_reader = lock(&conn.recv_lock);
        if conn.disconnecting.load(Ordering::SeqCst) {
            return RecvOut::error(ILLEGAL_SESSION);
        }
        let mut st = lock(&conn.state);
        if conn.disconnecting.load(Ordering::SeqCst) {
            return RecvOut::error(ILLEGAL_SESSION);
        }
        loop {
            if let Some(front) = st.out.queue.front() {
                let (mut out, consumed) = to_user(front, args);
                if consumed {
                    st.out.pop();
                }
                if out.ret >= 0 {
                    out.more_msgs = Some(st.out.queue.len() as i32);
                }
                return out;
            }
            if !blocking && self.sp.poll(mbox) == 0 {
                return RecvOut::error(WOULD_BLOCK);
            }
            // Do not hold the connection while blocked in SP: senders may proceed.
            drop(st);
            let rx = match self.read_one(mbox, args) {
                // SP's own errors go back as they are, without the connection.
                Err(out) => return out,
                Ok(rx) => rx,
            };
            st = lock(&conn.state);
            if conn.disconnecting.load(Ordering::SeqCst) {
                return RecvOut::error(ILLEGAL_SESSION);
            }
            match rx {
                None => continue,
                Some(m) => {
                    let st = &mut *st;
                    handle(&self.sp, st, m);
                    if let Some(e) = st.out.fatal.take() {
                        return RecvOut::error(e);
                    }
                }
            }
        }
    }

    /// `SP_scat_receive` into capacities the caller's buffers have, without
    /// allocating them in full: physical buffers start small and grow to the size
    /// SP reports as needed (SP keeps a short message for the next call).
    fn recv_sized(&self, mbox: i32, max_groups: usize, body_cap: usize) -> SpRecv {
        const START_GROUPS: usize = MAX_GROUPS_PER_MESSAGE;
        const START_BODY: usize = MAX_MESSAGE_BODY_LEN;
        let mut g = max_groups.min(START_GROUPS);
        let mut b = body_cap.min(START_BODY);
        let mut last = SpRecv::default();
        for _ in 0..4 {
            let r = self.sp.receive(mbox, g, b);
            if r.ret != GROUPS_TOO_SHORT && r.ret != BUFFER_TOO_SHORT {
                return r;
            }
            let need_g = (r.num_groups < 0).then(|| r.num_groups.unsigned_abs() as usize);
            let need_b = (r.endian_mismatch < 0).then(|| r.endian_mismatch.unsigned_abs() as usize);
            let short_g = need_g.is_some_and(|n| n > max_groups);
            let short_b = need_b.is_some_and(|n| n > body_cap);
            if short_g || short_b {
                // Short for the caller's real buffers too: report it as SP would have.
                let mut r = r;
                r.num_groups = if short_g { r.num_groups } else { 0 };
                r.endian_mismatch = if short_b { r.endian_mismatch } else { 0 };
                r.ret = if short_g { GROUPS_TOO_SHORT } else { BUFFER_TOO_SHORT };
                return r;
            }
            if let Some(n) = need_g {
                g = g.max(n);
            }
            if let Some(n) = need_b {
                b = b.max(n);
            }
            last = r;
        }
        last.ret = SP_BUG;
        last
    }

    /// Read one SP message as the original FL does: leave room for the reference
    /// group of a subgroupcast, never use DROP_RECV at SP level, re-read into
    /// larger buffers when that is what the caller's DROP_RECV (or the reserved
    /// slot) calls for, then strip FL trailers. `Ok(None)`: consumed, nothing to
    /// deliver (malformed FL trailer).
    #[allow(clippy::result_large_err)]
    fn read_one(&self, mbox: i32, args: &RecvArgs) -> Result<Option<RxMsg>, RecvOut> {
        let drop_recv = args.service_in & DROP_RECV as i32 != 0;
        let max_groups = args.max_groups.max(0) as usize;
        let first = self.recv_sized(mbox, max_groups.saturating_sub(1), args.body_cap);
        let r = if first.ret == GROUPS_TOO_SHORT || first.ret == BUFFER_TOO_SHORT {
            let mut ng = first.num_groups;
            if ng < 0 && first.service & SUBGROUP != 0 {
                ng -= 1;
            }
            let need_g = ng.unsigned_abs() as usize;
            let need_b = first.endian_mismatch.unsigned_abs() as usize;
            if drop_recv && (need_g > HOSTILE_GROUPS || need_b > HOSTILE_BODY) {
                // No daemon sends such a frame; the original would try to
                // allocate it. Treat the stream as broken instead.
                return Err(RecvOut::error(CONNECTION_CLOSED));
            }
            if drop_recv || (need_g <= max_groups && first.endian_mismatch == 0) {
                let g = if need_g > max_groups { need_g } else { max_groups };
                let b = if first.endian_mismatch < 0 {
                    first.endian_mismatch.unsigned_abs() as usize
                } else {
                    args.body_cap
                };
                let again = self.recv_sized(mbox, g, b);
                if again.ret == GROUPS_TOO_SHORT || again.ret == BUFFER_TOO_SHORT {
                    // The original aborts here (SP contradicted itself).
                    return Err(RecvOut::error(SP_BUG));
                }
                again
            } else {
                return Err(RecvOut {
                    ret: first.ret,
                    service: Some(first.service),
                    sender: Some(first.sender),
                    num_groups: Some(ng),
                    mess_type: Some(first.mess_type),
                    endian_mismatch: Some(first.endian_mismatch),
                    ..RecvOut::default()
                });
            }
        } else {
            first
        };
        if r.ret < 0 {
            return Err(RecvOut::error(r.ret));
        }
        Ok(strip_trailers(r))
    }
}

/// Take the FL trailers off a data message (reference group, view id, original
/// message type) and find the view id of a membership.
fn strip_trailers(r: SpRecv) -> Option<RxMsg> {
    let mut body = r.body;
    body.truncate(r.ret.max(0) as usize);
    let mut groups = r.groups;
    groups.truncate(r.num_groups.max(0) as usize);
    let mut mess_type = r.mess_type;
    let swap = r.endian_mismatch != 0;
    let mut vulnerable = false;
    let mut dst_gid = [0; 3];
    let svc = r.service as u32;
    let regular = svc & REGULAR_MESS != 0 && svc & REJECT_MESS == 0;
    if regular {
        if svc & SUBGROUP_CAST != 0 {
            let at = body.len().checked_sub(MAX_GROUP_NAME)?;
            let mut reference = [0u8; MAX_GROUP_NAME];
            reference.copy_from_slice(&body[at..]);
            body.truncate(at);
            groups.push(reference);
        }
        if mess_type < FL_MIN_LEGAL_MESS_TYPE {
            let at = body.len().checked_sub(GID_LEN)?;
            dst_gid = gid_from(&body[at..], swap);
            body.truncate(at);
            if mess_type == VULNERABLE_MESS {
                let at = body.len().checked_sub(2)?;
                let t = i16::from_ne_bytes([body[at], body[at + 1]]);
                mess_type = if swap { t.swap_bytes() } else { t };
                body.truncate(at);
                vulnerable = true;
            }
        }
    } else if svc & REG_MEMB_MESS != 0 && svc & REJECT_MESS == 0 {
        if body.len() < GID_LEN {
            return None;
        }
        // SP already converted the membership body to our byte order.
        dst_gid = gid_from(&body[..GID_LEN], false);
    }
    Some(RxMsg {
        msg: BufMsg {
            service: r.service,
            sender: r.sender,
            groups,
            mess_type,
            endian_mismatch: r.endian_mismatch,
            body,
            direct: false,
        },
        vulnerable,
        dst_gid,
    })
}

// ------------------------------------------------------------------------------------------
// Sending
// ------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn send_checked<S: SpApi>(
    sp: &S,
    mbox: i32,
    st: &mut ConnState,
    service: i32,
    grp: &Name,
    num_recvrs: i32,
    recvrs: &[Name],
    mess_type: i16,
    num_elements: usize,
    payload: Payload<'_>,
) -> i32 {
    if num_recvrs < 0 {
        return ILLEGAL_PARAM;
    }
    if service & ILLEGAL_SEND_BITS != 0 {
        return ILLEGAL_SERVICE;
    }
    if mess_type < FL_MIN_LEGAL_MESS_TYPE {
        return ILLEGAL_MESSAGE_TYPE;
    }
    if num_elements > FL_MAX_SCATTER_ELEMENTS {
        return ILLEGAL_MESSAGE;
    }
    let private_dst = is_private_group(grp);
    let key = name_key(grp);
    let group = if private_dst {
        None
    } else {
        match st.groups.get(&key) {
            Some(g) if g.mstate == Membership::Joined => Some(g),
            _ => return ILLEGAL_GROUP,
        }
    };
    if let Some(g) = group {
        if g.vstate == Phase::Agree {
            return ILLEGAL_STATE;
        }
    }
    let mut trailer: Vec<u8> = Vec::with_capacity(2 + GID_LEN + MAX_GROUP_NAME);
    let mut wire_type = mess_type;
    if let Some(g) = group {
        let vulnerable = matches!(g.vstate, Phase::Authorize | Phase::Verify)
            && service & (UNRELIABLE_MESS | RELIABLE_MESS | FIFO_MESS) as i32 != 0;
        if vulnerable {
            trailer.extend_from_slice(&mess_type.to_ne_bytes());
            trailer.extend_from_slice(&gid_bytes(&g.fl_view.gid));
            wire_type = VULNERABLE_MESS;
        }
    }
    let ret = if service & SUBGROUP == 0 {
        let mut all = match payload {
            Payload::Parts(p) => p,
            Payload::Invalid(e) => return e,
        };
        if !trailer.is_empty() {
            all.push(&trailer);
        }
        sp.multicast(mbox, service, grp, wire_type, &all)
    } else {
        let n = (num_recvrs as usize).min(recvrs.len());
        let recvrs = &recvrs[..n];
        let legal = match group {
            Some(g) => recvrs.iter().all(|r| g.fl_view.has_member(&name_key(r))),
            None => recvrs.iter().all(|r| name_key(r) == key),
        };
        trailer.extend_from_slice(&key);
        if legal {
            let mut all = match payload {
                Payload::Parts(p) => p,
                Payload::Invalid(e) => return e,
            };
            all.push(&trailer);
            sp.multigroup_multicast(mbox, service, recvrs, wire_type, &all)
        } else {
            ILLEGAL_RECEIVERS
        }
    };
    if ret >= 0 {
        // Report only the caller's bytes.
        let extra = trailer.len() as i32;
        if ret >= extra {
            ret - extra
        } else {
            SP_BUG
        }
    } else {
        ret
    }
}

/// Answer a flush request: send FLUSH_OK for the change being worked on.
fn int_flush<S: SpApi>(sp: &S, mbox: i32, g: &mut Group) -> i32 {
    if g.mstate == Membership::Leaving {
        return ILLEGAL_GROUP;
    }
    if g.vstate != Phase::Authorize {
        return ILLEGAL_STATE;
    }
    let gid = match g.current() {
        Some(c) => c.view.gid,
        None => return ILLEGAL_STATE,
    };
    g.vstate = Phase::Agree;
    let ret = sp.multicast(mbox, SVC_FIFO, &g.name, FLUSH_OK_MESS, &[&gid_bytes(&gid)]);
    if ret == GID_LEN as i32 {
        0
    } else if ret < 0 {
        // The original aborts unless the session is gone; we return the error.
        ret
    } else {
        SP_BUG
    }
}

// ------------------------------------------------------------------------------------------
// Receiving: the state machine
// ------------------------------------------------------------------------------------------

fn handle<S: SpApi>(sp: &S, st: &mut ConnState, m: RxMsg) {
    let svc = m.msg.service as u32;
    let ConnState { groups, out } = st;
    if svc & REGULAR_MESS != 0 && svc & REJECT_MESS == 0 {
        // The group a data message belongs to: its first destination, or the
        // reference group carried by a subgroupcast.
        let dst = if svc & SUBGROUP_CAST != 0 { m.msg.groups.last() } else { m.msg.groups.first() };
        let dst = match dst {
            Some(d) => name_key(d),
            None => return,
        };
        if let Some(g) = groups.get_mut(&dst) {
            match m.msg.mess_type {
                FLUSH_OK_MESS => on_flush_ok(sp, out, g, &m),
                FLUSH_RECV_MESS => on_flush_recv(g, &m),
                _ => on_data(out, g, m),
            }
        } else if dst == out.private {
            out.push_received(m.msg);
        }
        // Anything else is for a group this connection is not in: dropped.
    } else if svc & MEMBERSHIP_MESS != 0 && svc & REJECT_MESS == 0 {
        let key = name_key(&m.msg.sender);
        if svc & REG_MEMB_MESS != 0 {
            let me = out.private;
            let g = groups.entry(key).or_insert_with(|| Group::new(key, me));
            on_sp_view(sp, out, g, &m);
        } else if svc & TRANSITION_MESS != 0 {
            if let Some(g) = groups.get_mut(&key) {
                on_transitional(out, g);
            }
        } else if svc & CAUSED_BY_LEAVE != 0 {
            groups.remove(&key);
            out.push_received(m.msg);
        }
    } else {
        // Not data, not membership (a reject): the original aborts; we hand it
        // to the application unchanged.
        out.push_received(m.msg);
    }
}

fn flush_req(out: &mut Outbox, g: &Group) {
    out.push(BufMsg::signal(FLUSH_REQ_MESS, &g.name));
}

fn transitional(out: &mut Outbox, g: &Group) {
    out.push(BufMsg::signal(TRANSITION_MESS, &g.name));
}

fn on_data(out: &mut Outbox, g: &mut Group, m: RxMsg) {
    let sender = name_key(&m.msg.sender);
    if g.vstate == Phase::Agree && m.vulnerable {
        if let Some(c) = g.current() {
            if c.view.gid == m.dst_gid {
                // Sent in the view being installed: hold it until then. (The
                // original aborts if the sender is not in that view; we drop it.)
                if c.view.curr.contains(&sender) {
                    g.held.push_back(m.msg);
                }
                return;
            }
        }
    }
    if g.fl_view.curr.contains(&sender) {
        out.push_received(m.msg);
    }
}

fn on_flush_recv(g: &mut Group, m: &RxMsg) {
    match g.vstate {
        Phase::Verify => {
            if m.dst_gid == g.fl_view.gid {
                g.flush_recvs += 1;
                if g.flush_recvs == g.fl_view.members.len() {
                    g.vstate = Phase::Steady;
                }
            }
        }
        Phase::Agree => {
            if g.current().map(|c| c.view.gid) == Some(m.dst_gid) {
                g.flush_recvs += 1;
            }
        }
        Phase::Steady | Phase::Authorize => {}
    }
}

fn on_flush_ok<S: SpApi>(sp: &S, out: &mut Outbox, g: &mut Group, m: &RxMsg) {
    let sender = name_key(&m.msg.sender);
    let c = g.change_entry(m.dst_gid);
    c.flok_senders.insert(sender);
    let serial = c.serial;
    if g.vstate != Phase::Agree || g.curr_change != Some(serial) {
        return;
    }
    let complete = match g.current() {
        Some(c) => c.memb_recvd && c.flok_senders.len() == c.view.members.len(),
        None => false,
    };
    if !complete {
        return;
    }
    // Every member of the new view has flushed: install it.
    let memb = view_message(g);
    out.push(memb);
    g.vstate = Phase::Verify;
    if g.mstate == Membership::Joining {
        g.mstate = Membership::Joined;
    }
    install_current(g);
    if g.memb_queue.is_empty() {
        let gid = g.fl_view.gid;
        let ret = sp.multicast(out.mbox, SVC_FIFO, &g.name, FLUSH_RECV_MESS, &[&gid_bytes(&gid)]);
        if ret != GID_LEN as i32 {
            // Session gone (or, where the original aborts, another SP error):
            // give the error to the caller at once.
            out.fatal = Some(if ret < 0 { ret } else { SP_BUG });
            return;
        }
    } else {
        next_change(sp, out, g);
    }
    if g.fl_view.curr.len() < g.fl_view.members.len() {
        // Members of the new view are already gone.
        g.fl_view.in_trans = true;
        transitional(out, g);
    }
    while let Some(h) = g.held.pop_front() {
        out.push(h);
    }
}

/// The FL membership message for the change being installed (pre-4.0 body:
/// gid, count, names).
fn view_message(g: &Group) -> BufMsg {
    let c = g.current().expect("caller checked");
    let new = &c.view;
    let mut body = Vec::new();
    body.extend_from_slice(&gid_bytes(&new.gid));
    if new.memb_type & CAUSED_BY_NETWORK as i32 == 0 {
        body.extend_from_slice(&1i32.to_ne_bytes());
        body.extend_from_slice(&c.delta.unwrap_or([0; 32]));
    } else {
        // Who came along from the previous FL view, in its order.
        let last = &g.fl_view;
        let mut seen = HashSet::new();
        let kept: Vec<Name> =
            last.members.iter().filter(|n| last.curr.contains(*n) && seen.insert(**n)).copied().collect();
        body.extend_from_slice(&(kept.len() as i32).to_ne_bytes());
        for n in &kept {
            body.extend_from_slice(n);
        }
    }
    BufMsg {
        service: new.memb_type,
        sender: g.name,
        groups: new.members.clone(),
        mess_type: new.my_index,
        endian_mismatch: 0,
        body,
        direct: false,
    }
}

/// The current change becomes the FL view.
fn install_current(g: &mut Group) {
    if let Some(gid) = g.memb_queue.pop_front() {
        if let Some(c) = g.pending.remove(&gid) {
            g.fl_view = c.view;
        }
        if g.sp_view == Some(gid) {
            g.sp_view = None;
        }
    }
    g.curr_change = None;
}

/// Start working on the oldest pending change.
fn next_change<S: SpApi>(sp: &S, out: &mut Outbox, g: &mut Group) {
    let serial = match g.memb_queue.front().and_then(|gid| g.pending.get(gid)) {
        Some(c) => c.serial,
        None => return,
    };
    g.curr_change = Some(serial);
    g.flush_recvs = 0;
    match g.vstate {
        Phase::Steady | Phase::Verify => {
            g.vstate = Phase::Authorize;
            flush_req(out, g);
        }
        Phase::Authorize => {}
        Phase::Agree => {
            // Already flushed the previous change: flush this one too.
            g.vstate = Phase::Authorize;
            let e = int_flush(sp, out.mbox, g);
            if e != 0 {
                out.fatal = Some(e);
            }
        }
    }
}

/// Parsed SP membership body (already in our byte order).
struct SpMemb {
    changed: Name,
    my_set: Vec<Name>,
}

fn parse_sp_memb(svc: u32, body: &[u8]) -> SpMemb {
    let u32_at = |off: usize| -> Option<usize> {
        let b = body.get(off..off + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let mut changed = [0u8; 32];
    if svc & (CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT) != 0 {
        if let Some(b) = body.get(24..56) {
            changed.copy_from_slice(b);
        }
    }
    changed[31] = 0;
    let mut my_set = Vec::new();
    if let Some(off) = u32_at(16).and_then(|o| o.checked_add(20)) {
        if let Some(n) = u32_at(off) {
            let mut p = off + 4;
            for _ in 0..n.min(body.len() / MAX_GROUP_NAME + 1) {
                match body.get(p..p + MAX_GROUP_NAME) {
                    Some(b) => my_set.push(name_key(b)),
                    None => break,
                }
                p += MAX_GROUP_NAME;
            }
        }
    }
    SpMemb { changed, my_set }
}

/// A new SP view for the group.
fn on_sp_view<S: SpApi>(sp: &S, out: &mut Outbox, g: &mut Group, m: &RxMsg) {
    let svc = m.msg.service as u32;
    let gid = m.dst_gid;
    if g.pending.get(&gid).is_some_and(|c| c.memb_recvd) {
        return; // the same SP view twice: nothing new
    }
    // Who left since the previous SP view.
    let parsed = parse_sp_memb(svc, &m.msg.body);
    let (delta, leavers): (Option<Name>, Vec<Name>) = if svc & CAUSED_BY_NETWORK == 0 {
        let d = name_key(&parsed.changed);
        (Some(d), if svc & CAUSED_BY_JOIN == 0 { vec![d] } else { Vec::new() })
    } else {
        // Network change: whoever was in the previous SP view and is not in
        // this member's vs-set left. (This is what the original's code sets
        // out to do; 5.0.1 itself crashes here, erasing names from a table
        // keyed by name pointers, so no conforming peer depends on more.)
        let mut seen = HashSet::new();
        let stayed: HashSet<Name> = parsed.my_set.iter().copied().collect();
        let gone = g.sp_view().members.iter().filter(|n| !stayed.contains(*n) && seen.insert(**n)).copied().collect();
        (None, gone)
    };
    let members: Vec<Name> = m.msg.groups.iter().map(|n| name_key(n)).collect();
    let c = g.change_entry(gid);
    c.memb_recvd = true;
    c.delta = delta;
    c.view.fill(m.msg.service, &members, m.msg.mess_type);
    let new_serial = c.serial;

    let mut shrunk = false;
    for l in &leavers {
        shrunk |= g.fl_view.curr.remove(l);
    }
    age_unconfirmed(g);
    let next = collapse(g, &leavers, gid).unwrap_or(new_serial);
    g.memb_queue.push_back(gid);
    g.sp_view = Some(gid);
    if g.curr_change != Some(next) {
        // Held messages came from members that are gone.
        g.held.clear();
        next_change(sp, out, g);
    }
    if shrunk && !g.fl_view.in_trans {
        g.fl_view.in_trans = true;
        transitional(out, g);
    }
}

/// An SP transitional message. Note the original marks the latest SP view
/// first and tests the FL view second; when no change is pending those are the
/// same view, so no signal is delivered then (kept as is).
fn on_transitional(out: &mut Outbox, g: &mut Group) {
    g.sp_view_mut().in_trans = true;
    if !g.fl_view.in_trans {
        g.fl_view.in_trans = true;
        transitional(out, g);
    }
}

/// Age the changes known only from FLUSH_OKs; forget one that got too old.
fn age_unconfirmed(g: &mut Group) {
    let mut expired = None;
    for (gid, c) in g.pending.iter_mut() {
        if !c.memb_recvd {
            c.age += 1;
            if c.age > FLOK_AGE_LIMIT {
                expired = Some(*gid);
                break;
            }
        }
    }
    if let Some(gid) = expired {
        g.pending.remove(&gid);
    }
}

/// Queued changes that a leaver belongs to but never flushed can never be
/// installed: drop them, and mark the change after them (or the new one) as a
/// network change. Returns the serial of the change to work on next, if any is
/// queued.
fn collapse(g: &mut Group, leavers: &[Name], new_gid: Gid) -> Option<u64> {
    if !g.memb_queue.is_empty() && !leavers.is_empty() {
        let mut invalidating = false;
        let mut i = 0;
        while i < g.memb_queue.len() {
            let gid = g.memb_queue[i];
            let Some(c) = g.pending.get_mut(&gid) else {
                g.memb_queue.remove(i);
                continue;
            };
            let mut dead = false;
            for l in leavers {
                if c.view.curr.contains(l) {
                    if !c.flok_senders.contains(l) {
                        dead = true;
                        break;
                    }
                    c.view.curr.remove(l);
                }
            }
            if dead {
                invalidating = true;
                g.pending.remove(&gid);
                g.memb_queue.remove(i);
                continue;
            }
            if invalidating {
                invalidating = false;
                c.view.memb_type = (REG_MEMB_MESS | CAUSED_BY_NETWORK) as i32;
            }
            i += 1;
        }
        if invalidating {
            if let Some(c) = g.pending.get_mut(&new_gid) {
                c.view.memb_type = (REG_MEMB_MESS | CAUSED_BY_NETWORK) as i32;
            }
        }
    }
    g.memb_queue.front().and_then(|gid| g.pending.get(gid)).map(|c| c.serial)
}

#[cfg(test)]
pub(crate) fn group_phase<S: SpApi>(lib: &FlLib<S>, mbox: i32, group: &str) -> Option<(Membership, Phase)> {
    lib.with_conn(mbox, |st| st.groups.get(&name_key(group.as_bytes())).map(|g| (g.mstate, g.vstate))).ok().flatten()
}
