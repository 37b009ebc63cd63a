//! Whole daemons under the seeded simulator: every node is the daemon's
//! real engine (sessions, groups, delivery) over its real token ring, on a
//! simulated network that loses, duplicates and reorders, with partitions,
//! heals, crashes and restarts in virtual time. Clients are byte streams;
//! the checks read what every client received:
//!
//! * group views: clients that install the same group id see the same
//!   members;
//! * one order: any two clients deliver the messages they both delivered in
//!   a view in the same order;
//! * virtual synchrony: two clients that install the same next view
//!   delivered the same messages in the view before;
//! * self-delivery: a client on a daemon that never crashed receives every
//!   message it sent;
//! * after every heal and restart, one view of every client.
//!
//! `RSPREAD_SIM_SEEDS=N`, `RSPREAD_SIM_SEED=S`, `RSPREAD_SIM_DAEMONS=K` as
//! in `ring_membership.rs`.

mod engine_util;
use engine_util::{frame, split_frames};

use std::collections::{HashMap, HashSet};

use spread_daemon::engine::ring::engine_sim::EngineDaemon;
use spread_daemon::engine::ring::sim::{conf_for, Faults, RingSim, SimDaemon};
use spread_daemon::engine::ConnId;
use spread_wire::consts::{AGREED_MESS, CAUSED_BY_NETWORK, JOIN_MESS, REG_MEMB_MESS, SAFE_MESS, TRANSITION_MESS};

type Sim = RingSim<EngineDaemon>;

const SEC: u64 = 1_000_000;
const GROUP: &str = "g";

fn lossy() -> Faults {
    Faults { loss: 0.03, dup: 0.02, min_delay_us: 20, max_delay_us: 2_000 }
}

/// What a client received, frame by frame.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    /// A regular membership of the group: its id, members, whether a
    /// configuration change caused it, and the receiver's own vs-set (the
    /// members that came with it from its previous view).
    View { gid: [u8; 12], members: Vec<String>, network: bool, vs: Vec<String> },
    /// The transitional signal of the group.
    Transitional,
    /// A data message: its text (`<client>:<n>`).
    Data(String),
}

/// A client of one simulated daemon, joined to [`GROUP`].
struct Client {
    node: usize,
    id: ConnId,
    name: String,
    /// Its private group name, as senders appear.
    private: String,
    /// Still connected (its daemon has not crashed).
    alive: bool,
    /// Its daemon never crashed while it was connected.
    owed_all: bool,
    sent: Vec<String>,
    events: Vec<Ev>,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn parse(f: &[u8]) -> Ev {
    let t = u32::from_le_bytes(f[0..4].try_into().unwrap());
    let ng = i32::from_le_bytes(f[36..40].try_into().unwrap()) as usize;
    let groups: Vec<String> = (0..ng).map(|i| cstr(&f[48 + 32 * i..80 + 32 * i])).collect();
    let body = &f[48 + 32 * ng..];
    if t & TRANSITION_MESS != 0 {
        Ev::Transitional
    } else if t & REG_MEMB_MESS != 0 {
        // gid, number of vs-sets, offset of mine (from byte 20), then sets of
        // (count, names).
        let int = |at: usize| i32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
        let mine = 20 + int(16);
        let mut vs: Vec<String> = (0..int(mine)).map(|i| cstr(&body[mine + 4 + 32 * i..mine + 36 + 32 * i])).collect();
        vs.sort();
        Ev::View { gid: body[..12].try_into().unwrap(), members: groups, network: t & CAUSED_BY_NETWORK != 0, vs }
    } else {
        Ev::Data(String::from_utf8_lossy(body).into_owned())
    }
}

impl Client {
    /// The data messages it received.
    fn received(&self) -> HashSet<&String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Data(t) => Some(t),
                _ => None,
            })
            .collect()
    }
}

struct World {
    sim: Sim,
    clients: Vec<Client>,
    generation: usize,
    seed: u64,
    k: usize,
    test: &'static str,
    trace: Vec<String>,
}

impl World {
    fn new(test: &'static str, seed: u64, k: usize, faults: Faults) -> World {
        let sim = Sim::launch(&conf_for(k), seed, faults, &[]);
        World { sim, clients: Vec::new(), generation: 0, seed, k, test, trace: Vec::new() }
    }

    fn replay(&self) -> String {
        let mut clients = String::new();
        for c in &self.clients {
            let alive = if c.alive { "" } else { " (gone)" };
            let got = c.received();
            let own_missing: Vec<&String> = c.sent.iter().filter(|t| !got.contains(t)).collect();
            clients.push_str(&format!(
                "{} on daemon {}{alive}: own messages not received {own_missing:?}; received {:?}\n",
                c.private, c.node, c.events
            ));
        }
        for (i, n) in self.sim.nodes.iter().enumerate() {
            let r = n.ring();
            clients.push_str(&format!(
                "daemon {i}{}: ring {:?} {:?} {:?}, groups {:?} synced {:?}, reading paused {}, queues (normal, groups, groups served) {:?}, {} delivered, seq {} aru {}, {} sessions, {} unread\n",
                if self.sim.down[i] { " (down)" } else { "" },
                r.state(),
                r.ring_id(),
                r.members(),
                n.engine.groups().state(),
                n.engine.groups().synced_set(),
                n.engine.reading_paused(),
                r.down_queues(),
                r.stats().messages_delivered,
                r.highest_seq(),
                r.aru(),
                n.engine.num_sessions(),
                n.unread_len(),
            ));
        }
        for (i, cs) in self.sim.configs.iter().enumerate() {
            for c in cs {
                let kind = if c.transitional { "transitional" } else { "regular" };
                clients.push_str(&format!("daemon {i} at {} µs: {kind} {:?} {:?}\n", c.at_us, c.id, c.members));
            }
        }
        format!(
            "replay: RSPREAD_SIM_SEED={} RSPREAD_SIM_DAEMONS={} cargo test --release -p spread-daemon --test ring_engines {}\n{}\n{clients}",
            self.seed,
            self.k,
            self.test,
            self.trace.join("\n")
        )
    }

    /// Move what the daemons wrote into the clients' event lists.
    fn collect(&mut self) {
        for c in self.clients.iter_mut().filter(|c| c.alive) {
            let b = self.sim.take(c.node, c.id);
            for f in split_frames(&b) {
                c.events.push(parse(&f));
            }
        }
    }

    /// A new client on `node`, joined to the group.
    fn add_client(&mut self, node: usize) {
        self.generation += 1;
        let name = format!("c{}", self.generation);
        let Some(id) = self.sim.connect(node, &name, true) else { panic!("connect refused; {}", self.replay()) };
        let daemon = self.sim.cfg.daemons[node].name.clone();
        let private = format!("#{name}#{daemon}");
        self.sim.client_send(node, id, &frame(JOIN_MESS, &private, &[GROUP], 0, b""));
        self.clients.push(Client {
            node,
            id,
            name,
            private,
            alive: true,
            owed_all: true,
            sent: Vec::new(),
            events: Vec::new(),
        });
    }

    fn crash(&mut self, node: usize) {
        self.trace.push(format!("{} µs: crash {node}", self.sim.now_us));
        self.collect();
        self.sim.crash(node);
        for c in self.clients.iter_mut().filter(|c| c.node == node && c.alive) {
            c.alive = false;
            c.owed_all = false;
        }
    }

    fn restart(&mut self, node: usize) {
        self.trace.push(format!("{} µs: restart {node}", self.sim.now_us));
        self.sim.restart(node);
        self.add_client(node);
    }

    /// Every live client multicasts `n` messages to the group, AGREED and
    /// SAFE mixed.
    fn load(&mut self, n: usize) -> Vec<String> {
        let mut texts = Vec::new();
        for j in 0..n {
            let live: Vec<usize> = (0..self.clients.len()).filter(|&i| self.clients[i].alive).collect();
            if live.is_empty() {
                break;
            }
            let ci = live[j % live.len()];
            let c = &mut self.clients[ci];
            let text = format!("{}:{}", c.name, c.sent.len());
            let service = if self.sim.rng.below(3) == 0 { SAFE_MESS } else { AGREED_MESS };
            let f = frame(service, &c.private, &[GROUP], 1, text.as_bytes());
            c.sent.push(text.clone());
            texts.push(text);
            let (node, id) = (c.node, c.id);
            self.sim.client_send(node, id, &f);
        }
        texts
    }

    /// Run virtual time forward by `us`.
    fn run(&mut self, us: u64) {
        let until = self.sim.now_us + us;
        self.sim.run_until(until, 50_000_000);
        self.collect();
    }

    /// Run until every live client's last view has all live clients
    /// (bounded by `limit_us` of virtual time).
    fn run_until_one_view(&mut self, limit_us: u64) -> bool {
        self.run_until(limit_us, |w| w.one_view())
    }

    /// Run until every live client received every message in `texts`.
    fn run_until_delivered(&mut self, texts: &[String], limit_us: u64) -> bool {
        self.run_until(limit_us, |w| {
            w.clients.iter().filter(|c| c.alive).all(|c| {
                let got = c.received();
                texts.iter().all(|t| got.contains(t))
            })
        })
    }

    fn run_until(&mut self, limit_us: u64, done: impl Fn(&World) -> bool) -> bool {
        let end = self.sim.now_us + limit_us;
        while self.sim.now_us < end {
            let next = (self.sim.now_us + SEC / 10).min(end);
            self.sim.run_until(next, 50_000_000);
            self.collect();
            if done(self) {
                return true;
            }
        }
        false
    }

    /// The ring is settled, no daemon is in a state exchange, and every
    /// live client's last view is the same one, of all live clients.
    fn one_view(&self) -> bool {
        if !self.sim.settled() || self.sim.nodes.iter().any(|n| n.engine.reading_paused()) {
            return false;
        }
        let live: Vec<&Client> = self.clients.iter().filter(|c| c.alive).collect();
        let mut want: Vec<String> = live.iter().map(|c| c.private.clone()).collect();
        want.sort();
        let last: Vec<Option<(&[u8; 12], &Vec<String>)>> = live
            .iter()
            .map(|c| {
                c.events.iter().rev().find_map(|e| match e {
                    Ev::View { gid, members, .. } => Some((gid, members)),
                    _ => None,
                })
            })
            .collect();
        let Some(Some((gid, _))) = last.first() else { return live.is_empty() };
        last.iter().all(|v| {
            v.is_some_and(|(g, m)| {
                let mut m = m.clone();
                m.sort();
                g == *gid && m == want
            })
        })
    }

    /// The client-visible guarantees over everything received so far;
    /// `settled`: also self-delivery (for the end of a run, once all was
    /// delivered).
    fn check(&self, settled: bool) -> Vec<String> {
        let mut bad = Vec::new();
        // Views: members per group id; each client's messages per view.
        let mut view_members: HashMap<[u8; 12], (usize, Vec<String>)> = HashMap::new();
        // (client, view index) → messages delivered in that view.
        struct Span {
            gid: [u8; 12],
            /// The next view, and who came with this client into it (all
            /// of this view's members that are in the next one when a join
            /// or leave caused it; the vs-set when the network did).
            next: Option<([u8; 12], Vec<String>)>,
            members: Vec<String>,
            msgs: Vec<String>,
        }
        let mut spans: Vec<Vec<Span>> = Vec::new();
        for (ci, c) in self.clients.iter().enumerate() {
            let mut mine: Vec<Span> = Vec::new();
            let mut seen = HashSet::new();
            for e in &c.events {
                match e {
                    Ev::View { gid, members, network, vs } => {
                        let mut m = members.clone();
                        m.sort();
                        match view_members.get(gid) {
                            Some((other, om)) if *om != m => bad.push(format!(
                                "view {gid:02x?}: client {} sees {m:?}, client {} sees {om:?}",
                                c.name, self.clients[*other].name
                            )),
                            Some(_) => {}
                            None => {
                                view_members.insert(*gid, (ci, m.clone()));
                            }
                        }
                        if let Some(last) = mine.last_mut() {
                            let with = if *network {
                                vs.clone()
                            } else {
                                last.members.iter().filter(|x| m.contains(x)).cloned().collect()
                            };
                            last.next = Some((*gid, with));
                        }
                        mine.push(Span { gid: *gid, next: None, members: m.clone(), msgs: Vec::new() });
                    }
                    Ev::Transitional => {}
                    Ev::Data(t) => {
                        if !seen.insert(t.clone()) {
                            bad.push(format!("client {} delivered {t} twice", c.name));
                        }
                        match mine.last_mut() {
                            Some(s) => s.msgs.push(t.clone()),
                            None => bad.push(format!("client {} delivered {t} before its first view", c.name)),
                        }
                    }
                }
            }
            if settled && c.owed_all {
                for t in &c.sent {
                    if !seen.contains(t) {
                        bad.push(format!("client {} never received its own {t}", c.name));
                    }
                }
            }
            spans.push(mine);
        }
        for a in 0..spans.len() {
            for b in a + 1..spans.len() {
                for sa in &spans[a] {
                    for sb in spans[b].iter().filter(|s| s.gid == sa.gid) {
                        // One order: the common messages in the same order.
                        let inb: HashSet<&String> = sb.msgs.iter().collect();
                        let ina: HashSet<&String> = sa.msgs.iter().collect();
                        let ca: Vec<&String> = sa.msgs.iter().filter(|t| inb.contains(t)).collect();
                        let cb: Vec<&String> = sb.msgs.iter().filter(|t| ina.contains(t)).collect();
                        if ca != cb {
                            bad.push(format!(
                                "view {:02x?}: clients {} and {} delivered common messages in different orders",
                                sa.gid, self.clients[a].name, self.clients[b].name
                            ));
                        }
                        // Virtual synchrony: moved on together to the same
                        // view, same messages.
                        let together = match (&sa.next, &sb.next) {
                            (Some((ga, wa)), Some((gb, _))) => {
                                ga == gb
                                    && wa.contains(&self.clients[b].private)
                                    && wa.contains(&self.clients[a].private)
                            }
                            _ => false,
                        };
                        if together && ina != inb {
                            bad.push(format!(
                                "view {:02x?}: clients {} and {} moved on together to the same view but delivered different messages ({} vs {})",
                                sa.gid,
                                self.clients[a].name,
                                self.clients[b].name,
                                sa.msgs.len(),
                                sb.msgs.len()
                            ));
                        }
                    }
                }
            }
        }
        bad
    }

    fn assert_clean(&self, what: &str, settled: bool) {
        let mut bad = self.sim.check();
        bad.extend(self.check(settled));
        assert!(bad.is_empty(), "{what}:\n{}\n{}", bad.join("\n"), self.replay());
    }
}

fn seeds(default: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("RSPREAD_SIM_SEED") {
        return vec![s.parse().expect("RSPREAD_SIM_SEED is a number")];
    }
    let n = std::env::var("RSPREAD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    (1..=n).collect()
}

fn daemons(default: usize) -> usize {
    std::env::var("RSPREAD_SIM_DAEMONS").ok().and_then(|s| s.parse().ok()).unwrap_or(default).clamp(1, 32)
}

/// Daemons start, form their ring, clients on every daemon join one group
/// and multicast: every client sees one view of all, then every message in
/// one order.
#[test]
fn clients_on_every_daemon_share_one_group_and_one_order() {
    for seed in seeds(20) {
        let k = daemons(2 + (seed % 4) as usize);
        let mut w = World::new("clients_on_every_daemon_share_one_group_and_one_order", seed, k, lossy());
        assert!(w.sim.run_until_settled(120 * SEC, 50_000_000), "no ring; {}", w.replay());
        for i in 0..k {
            w.add_client(i);
        }
        assert!(w.run_until_one_view(60 * SEC), "clients never saw one view of all; {}", w.replay());
        let texts = w.load(30 * k);
        assert!(w.run_until_delivered(&texts, 60 * SEC), "messages not delivered to every client; {}", w.replay());
        w.assert_clean("steady ring", true);
        // Every client delivered the very same sequence after the last view.
        let tails: Vec<Vec<&Ev>> = w
            .clients
            .iter()
            .map(|c| {
                let from = c.events.iter().rposition(|e| matches!(e, Ev::View { .. })).unwrap_or(0);
                c.events[from + 1..].iter().collect()
            })
            .collect();
        for t in &tails[1..] {
            assert_eq!(t, &tails[0], "clients delivered different sequences; {}", w.replay());
        }
    }
}

/// Random partitions, heals, crashes and restarts under client traffic;
/// the client-visible guarantees hold after every step, and once all is
/// healed every client is in one view and has every message.
#[test]
fn clients_through_partitions_crashes_and_restarts() {
    let fixed = std::env::var("RSPREAD_SIM_DAEMONS").is_ok();
    for seed in seeds(150) {
        let k = if fixed { daemons(4) } else { 2 + (seed % 5) as usize };
        let mut w = World::new("clients_through_partitions_crashes_and_restarts", seed, k, lossy());
        assert!(w.sim.run_until_settled(120 * SEC, 50_000_000), "no ring; {}", w.replay());
        for i in 0..k {
            w.add_client(i);
        }
        assert!(w.run_until_one_view(60 * SEC), "clients never saw one view of all; {}", w.replay());
        for step in 0..5 {
            let live: Vec<usize> = (0..k).filter(|&i| !w.sim.down[i]).collect();
            match w.sim.rng.below(4) {
                0 if k > 1 => {
                    let cut = 1 + w.sim.rng.below(k as u64 - 1) as usize;
                    let mut order: Vec<usize> = (0..k).collect();
                    for i in (1..k).rev() {
                        order.swap(i, w.sim.rng.below(i as u64 + 1) as usize);
                    }
                    let (a, b) = order.split_at(cut);
                    w.trace.push(format!("{} µs: partition {a:?} | {b:?}", w.sim.now_us));
                    w.sim.partition(&[a, b]);
                }
                1 => {
                    w.trace.push(format!("{} µs: heal", w.sim.now_us));
                    w.sim.heal();
                }
                2 if live.len() > 1 => {
                    let v = live[w.sim.rng.below(live.len() as u64) as usize];
                    w.crash(v);
                }
                _ => {
                    if let Some(v) = (0..k).find(|&i| w.sim.down[i]) {
                        w.restart(v);
                    }
                }
            }
            let n = 5 + w.sim.rng.below(20) as usize;
            w.load(n);
            let span = 500_000 + w.sim.rng.below(5 * SEC);
            w.run(span);
            w.assert_clean(&format!("after step {step}"), false);
        }
        w.trace.push(format!("{} µs: heal and restart all", w.sim.now_us));
        w.sim.heal();
        for v in 0..k {
            if w.sim.down[v] {
                w.restart(v);
            }
        }
        assert!(w.run_until_one_view(600 * SEC), "not one view again; {}", w.replay());
        let texts = w.load(2 * k);
        assert!(w.run_until_delivered(&texts, 60 * SEC), "messages after the heal not delivered; {}", w.replay());
        w.assert_clean("at the end", true);
    }
}
