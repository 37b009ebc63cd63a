//! The metrics endpoint (`MetricsAddress`) of the built daemon on real
//! sockets: scrapes follow sessions, groups and messages per service type;
//! other paths, methods, garbage and oversized requests get their error and
//! the daemon goes on serving clients; a hostile scraper holding every slot
//! costs clients nothing; without the keyword nothing listens; a ring of two
//! reports its members and token rotations. The keyword's parsing too.
//!
//! Ports 27200–27299.

mod daemon_util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use daemon_util::*;
use spread_daemon::config;

const RELIABLE: u32 = 0x02;
const FIFO: u32 = 0x04;
const AGREED: u32 = 0x10;
const SAFE: u32 = 0x20;

/// One HTTP exchange: the status code, the header block and the body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Send `req` as is to the endpoint at `port` and read the whole answer
/// (the daemon closes after it).
fn exchange(port: u16, req: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(req).unwrap();
    let mut b = Vec::new();
    s.read_to_end(&mut b).expect("answer until close");
    let text = String::from_utf8(b).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("header block");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status code");
    Reply { status, head: head.to_string(), body: body.to_string() }
}

fn get(port: u16, path: &str) -> Reply {
    exchange(port, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n").as_bytes())
}

/// Scrape `/metrics`: every sample, keyed by name and labels as written.
fn scrape(port: u16) -> HashMap<String, f64> {
    let r = get(port, "/metrics");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.head.contains("Content-Type: text/plain; version=0.0.4"), "{}", r.head);
    assert!(r.head.contains("Connection: close"), "{}", r.head);
    let mut m = HashMap::new();
    for l in r.body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (k, v) = l.rsplit_once(' ').expect("sample line");
        m.insert(k.to_string(), v.parse::<f64>().unwrap_or_else(|_| panic!("value of {l:?}")));
    }
    m
}

fn val(m: &HashMap<String, f64>, k: &str) -> f64 {
    *m.get(k).unwrap_or_else(|| panic!("no sample {k}; have {:?}", m.keys().collect::<Vec<_>>()))
}

fn svc(name: &str, service: &str) -> String {
    format!("{name}{{service=\"{service}\"}}")
}

#[test]
fn scrapes_follow_sessions_groups_and_messages_per_service() {
    let _g = serial();
    let d = Daemon::start(27200, "MetricsAddress = 127.0.0.1:27205\n");
    let m = scrape(27205);
    assert_eq!(val(&m, "spread_sessions"), 0.0);
    assert_eq!(val(&m, "spread_groups"), 0.0);
    assert_eq!(val(&m, "spread_ring_members"), 1.0);
    assert_eq!(val(&m, "spread_ring_state{state=\"OP\"}"), 1.0);
    assert_eq!(val(&m, "spread_ring_state{state=\"GATHER\"}"), 0.0);
    assert!(val(&m, "spread_resident_memory_bytes") > 1e6);
    assert!(m.keys().any(|k| k.starts_with("spread_daemon_info{daemon=\"d1\",version=")), "{m:?}");
    for s in ["UNRELIABLE", "RELIABLE", "FIFO", "CAUSAL", "AGREED", "SAFE"] {
        assert_eq!(val(&m, &svc("spread_messages_received_total", s)), 0.0);
    }

    let mut c = connect_tcp(d.port, "m1", true);
    c.join("mg");
    wait_members(&mut c, "mg", 1);
    let body = [7u8; 10];
    let sends = [(AGREED, 3), (SAFE, 2), (RELIABLE, 1), (FIFO, 1)];
    for &(service, n) in &sends {
        for _ in 0..n {
            c.mcast(service, &["mg"], 1, &body);
        }
    }
    for _ in 0..7 {
        let got = c.recv();
        assert_eq!(got.body, body);
    }
    let m = scrape(27205);
    assert_eq!(val(&m, "spread_sessions"), 1.0);
    assert_eq!(val(&m, "spread_connections"), 1.0);
    assert_eq!(val(&m, "spread_groups"), 1.0);
    assert_eq!(val(&m, "spread_group_members_local"), 1.0);
    // A frame: 48-byte header, one 32-byte group name, the body.
    let frame = (48 + 32 + body.len()) as f64;
    for (service, n) in [("AGREED", 3.0), ("SAFE", 2.0), ("RELIABLE", 1.0), ("FIFO", 1.0), ("CAUSAL", 0.0)] {
        assert_eq!(val(&m, &svc("spread_messages_received_total", service)), n, "{service}");
        assert_eq!(val(&m, &svc("spread_received_bytes_total", service)), n * frame, "{service}");
        // The sender is the group's only member: each message once back to it.
        assert_eq!(val(&m, &svc("spread_messages_delivered_total", service)), n, "{service}");
        assert_eq!(val(&m, &svc("spread_delivered_bytes_total", service)), n * frame, "{service}");
    }
    assert_eq!(val(&m, "spread_client_queue_messages"), 0.0);
    assert_eq!(val(&m, "spread_membership_changes_total"), 0.0);

    // HEAD: the headers alone; other paths and methods: errors.
    let h = exchange(27205, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(get(27205, "/").status, 404);
    assert_eq!(get(27205, "/metricsx").status, 404);
    assert_eq!(exchange(27205, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status, 405);
    // The client is still served.
    c.mcast(AGREED, &["mg"], 2, b"after");
    assert_eq!(c.recv().body, b"after");
    let m = scrape(27205);
    assert_eq!(val(&m, &svc("spread_messages_received_total", "AGREED")), 4.0);
}

#[test]
fn bad_requests_and_a_hostile_scraper_do_not_stall_clients() {
    let _g = serial();
    let d = Daemon::start(27210, "MetricsAddress = 127.0.0.1:27215\n");
    let mut c = connect_tcp(d.port, "w1", true);
    c.join("wg");
    wait_members(&mut c, "wg", 1);

    assert_eq!(exchange(27215, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n").status, 400);
    assert_eq!(exchange(27215, b"GET /metrics HTTP/1.1\r\nHost\r\n\r\n").status, 400);
    // Headers past 8 KiB, and more coming: 431 (the rest is read and dropped).
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(64 * 1024, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exchange(27215, &big).status, 431);
    c.mcast(AGREED, &["wg"], 1, b"witness");
    assert_eq!(c.recv().body, b"witness");

    // Connections that never send a request hold every slot: one more is
    // told 503, clients go on, and the daemon drops the idle ones after its
    // deadline (5 s), when scrapes work again.
    let t0 = Instant::now();
    let mut idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("127.0.0.1", 27215)).unwrap()).collect();
    // Let the daemon accept them all before the next one.
    let w = Instant::now();
    while w.elapsed() < Duration::from_secs(1) {
        c.mcast(AGREED, &["wg"], 1, b"tick");
        assert_eq!(c.recv().body, b"tick");
    }
    // Refused: 503, or a reset when the request reached the daemon only
    // after it had read what there was and closed.
    let mut s = TcpStream::connect(("127.0.0.1", 27215)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut b = Vec::new();
    match s.read_to_end(&mut b) {
        Ok(_) => assert!(b.starts_with(b"HTTP/1.1 503 "), "{:?}", String::from_utf8_lossy(&b)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    for i in 0..100u8 {
        c.mcast(SAFE, &["wg"], 1, &[i; 100]);
        assert_eq!(c.recv().body, vec![i; 100]);
    }
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut b = [0u8; 16];
        // EOF once the daemon gives up on it.
        assert!(matches!(s.read(&mut b), Ok(0)), "an idle scrape connection was not closed");
    }
    let held = t0.elapsed();
    assert!(held >= Duration::from_secs(4) && held < Duration::from_secs(12), "idle connections held {held:?}");
    let m = scrape(27215);
    assert_eq!(val(&m, "spread_sessions"), 1.0);
    assert!(val(&m, &svc("spread_messages_received_total", "SAFE")) >= 100.0);
}

#[test]
fn without_the_keyword_nothing_listens() {
    let _g = serial();
    let d = Daemon::start(27220, "");
    let mut c = connect_tcp(d.port, "n1", false);
    c.join("ng");
    let r = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], 27225)), Duration::from_secs(2));
    assert!(r.is_err(), "something listens on the metrics port");
    drop(c);
}

/// Short membership timeouts, as the other ring tests use.
const FAST: &str = "TokenTimeout = 1000\nHurryTimeout = 200\nAliveTimeout = 100\nJoinTimeout = 100\n\
RepTimeout = 300\nSegTimeout = 200\nGatherTimeout = 500\nFormTimeout = 500\nLookupTimeout = 2000\n";

#[test]
fn a_ring_of_two_reports_members_and_token_rotations() {
    let _g = serial();
    let ports = [27230u16, 27240];
    let mut ring = String::from(FAST);
    for (i, p) in ports.iter().enumerate() {
        ring.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\tm{}\t127.0.0.1\n}}\n", i + 1));
    }
    // One file per daemon: the same ring, each its own endpoint (the
    // keyword is not part of the configuration hash).
    let ds: Vec<Daemon> = (0..2)
        .map(|i| {
            let dir = std::env::temp_dir().join(format!("rspread-metrics-ring-{i}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let conf = format!("{ring}MetricsAddress = 127.0.0.1:{}\n", ports[i] + 5);
            std::fs::write(dir.join("spread.conf"), conf).unwrap();
            Daemon::start_named(&format!("m{}", i + 1), ports[i], dir)
        })
        .collect();
    let mut a = connect_tcp(ports[0], "ra", true);
    let mut b = connect_tcp(ports[1], "rb", true);
    a.join("rg");
    b.join("rg");
    wait_members(&mut a, "rg", 2);
    wait_members(&mut b, "rg", 2);
    let before: Vec<_> = ports.iter().map(|p| scrape(p + 5)).collect();
    for m in &before {
        assert_eq!(val(m, "spread_ring_members"), 2.0);
        assert_eq!(val(m, "spread_ring_state{state=\"OP\"}"), 1.0);
        assert!(val(m, "spread_membership_changes_total") >= 1.0);
        assert_eq!(val(m, "spread_groups"), 1.0);
        assert_eq!(val(m, "spread_group_members_local"), 1.0);
    }
    for i in 0..20u8 {
        a.mcast(AGREED, &["rg"], 1, &[i; 50]);
    }
    for _ in 0..20 {
        assert_eq!(b.recv().body.len(), 50);
        assert_eq!(a.recv().body.len(), 50);
    }
    let after: Vec<_> = ports.iter().map(|p| scrape(p + 5)).collect();
    for (x, y) in before.iter().zip(&after) {
        let (t0, t1) = (val(x, "spread_token_rotations_total"), val(y, "spread_token_rotations_total"));
        assert!(t1 > t0, "token rotations {t0} -> {t1}");
    }
    assert_eq!(val(&after[0], &svc("spread_messages_received_total", "AGREED")), 20.0);
    assert_eq!(val(&after[1], &svc("spread_messages_received_total", "AGREED")), 0.0);
    assert_eq!(val(&after[1], &svc("spread_messages_delivered_total", "AGREED")), 20.0);
    // Small messages are packed several to a packet.
    assert!(val(&after[0], "spread_ring_packets_sent_total") > val(&before[0], "spread_ring_packets_sent_total"));
    drop(ds);
}

#[test]
fn the_keyword_takes_an_address_with_a_port() {
    let parse = |extra: &str| {
        config::parse_str_with_resolver(
            &format!("Spread_Segment 127.0.0.255:4803 {{ a 127.0.0.1 }}\n{extra}"),
            "t.conf",
            &config::offline_resolver,
        )
    };
    assert_eq!(parse("").unwrap().metrics_address, None);
    assert_eq!(
        parse("MetricsAddress = 127.0.0.1:9464").unwrap().metrics_address,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    assert_eq!(parse("MetricsAddress = [::1]:9464").unwrap().metrics_address, Some("[::1]:9464".parse().unwrap()));
    for bad in ["MetricsAddress = 127.0.0.1", "MetricsAddress = 127.0.0.1:0", "MetricsAddress = 9464", "MetricsAddress"]
    {
        let e = parse(bad).expect_err(bad);
        assert!(e.to_string().contains("MetricsAddress") || e.line > 0, "{bad}: {e}");
    }
    // Not part of the configuration hash: daemons of one ring may differ in it.
    assert_eq!(parse("").unwrap().hash, parse("MetricsAddress = 127.0.0.1:9464").unwrap().hash);
    // A reload that changes it takes effect only at a restart.
    let old = parse("").unwrap();
    let new = parse("MetricsAddress = 127.0.0.1:9464").unwrap();
    let ok = config::check_reload(&old, 0, &new, 0, true).unwrap();
    assert_eq!(ok.restart_only, vec!["MetricsAddress"]);
}
