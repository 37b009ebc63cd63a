//! The configurations recorded with the original 5.0.1 daemon parse to the
//! VIDs and configuration hashes that daemon logged and sent.

use spread_daemon::config::{self, IfType, Priority};

mod shared_ref;
use shared_ref::{read_ref, ref_dir};

/// The single-daemon config embedded in every transcript (scenarios a–e, h).
const TRANSCRIPT_CONF: &str = "# Golden-data recording: single reference Spread 5.0.1 daemon \"d1\" on loopback.\n# Data/client port 34803 (TCP clients + UDP), token port 34804. Unix socket: /tmp/34803 (compile-time dir /tmp).\nSpread_Segment 127.0.0.255:34803 {\n\td1\t127.0.0.1 {\n\t\tD 127.0.0.1\n\t\tC 127.0.0.1\n\t}\n}\nDaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = <RUNTIME_DIR>\nEventTimeStamp\nEventPreciseTimeStamp\nDebugFlags = { PRINT EXIT CONFIGURATION MEMBERSHIP }\n";

#[test]
fn transcript_daemon_vid_and_hash() {
    let c = config::parse_str(TRANSCRIPT_CONF, "transcript").unwrap();
    assert_eq!(c.daemons.len(), 1);
    let d = &c.daemons[0];
    assert_eq!(d.name, "d1");
    assert_eq!(d.vid, 1_552_775_919);
    assert_eq!(d.addr, "127.0.0.1:34803".parse().unwrap());
    assert_eq!(c.hash(), 2_443_419_032);
    assert_eq!(d.interfaces.len(), 2);
    assert_eq!(d.interfaces[0].kinds, IfType::DAEMON);
    assert_eq!(d.interfaces[1].kinds, IfType::CLIENT);
    assert_eq!(d.interfaces[1].addr, "127.0.0.1:34803".parse().unwrap());
    assert_eq!(c.daemon_user, "nobody");
    assert_eq!(c.daemon_group, "nogroup");
    assert_eq!(c.runtime_dir, "<RUNTIME_DIR>");
    assert_eq!(c.debug_flags, 0x311);
    assert_eq!(c.event_priority, Priority::Info);
    let ts = c.event_timestamp.as_ref().unwrap();
    assert_eq!(ts.format, "%m/%d/%y %H:%M:%S");
    assert!(ts.precise);
    assert!(!c.accelerated_ring());
}

#[test]
fn transcripts_json_agree() {
    let dir = std::fs::read_dir(ref_dir().join("transcripts")).expect("transcripts/ of ../shared/ref");
    let mut checked = 0;
    for e in dir.flatten() {
        let p = e.path();
        if p.extension() != Some(std::ffi::OsStr::new("json")) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Cheap extraction without a JSON dependency: the embedded conf and the numbers.
        let Some(conf) = json_string(&text, "\"spread_conf\": \"") else { continue };
        let c = config::parse_str(&conf, &p.display().to_string()).unwrap();
        if let Some(h) = json_number(&text, "\"conf_hash\": ") {
            assert_eq!(c.hash() as u64, h, "{}", p.display());
        }
        if let Some(v) = json_number(&text, "\"vid\": ") {
            assert!(c.daemons.iter().any(|d| d.vid as u64 == v), "{}", p.display());
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} transcripts checked");
}

fn json_string(text: &str, key: &str) -> Option<String> {
    let start = text.find(key)? + key.len();
    let mut out = String::new();
    let mut it = text[start..].chars();
    while let Some(c) = it.next() {
        match c {
            '"' => return Some(out),
            '\\' => match it.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn json_number(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[test]
fn pcap_ring_config() {
    let text = read_ref("pcap/spread.conf");
    let c = config::parse_str(&text, "pcap/spread.conf").unwrap();
    let vids: Vec<u32> = c.daemons.iter().map(|d| d.vid).collect();
    assert_eq!(vids, vec![1_552_775_919, 348_480_928, 4_014_350_958]);
    assert_eq!(c.hash(), 3_053_132_190);
    assert_eq!(c.segments.len(), 1);
    assert_eq!(c.segments[0].port, 34823);
    assert_eq!(c.segments[0].addrs, vec!["10.98.0.255:34823".parse().unwrap()]);
    assert_eq!(c.segments[0].daemons, vec![0, 1, 2]);
    // Implicit interface: all kinds plus ANY, on the daemon's address.
    assert_eq!(c.daemons[2].interfaces[0].kinds, IfType(0xF));
    assert_eq!(c.daemons[2].interfaces[0].addr, "10.98.0.3:34823".parse().unwrap());
}

#[test]
fn pcap_partition_config() {
    let text = read_ref("pcap/spread-f.conf");
    let c = config::parse_str(&text, "pcap/spread-f.conf").unwrap();
    assert_eq!(c.hash(), 1_290_242_998);
    assert_eq!(c.daemons[1].vid, 348_480_928);
}
