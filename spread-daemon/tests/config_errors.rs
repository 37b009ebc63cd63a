//! Bad files are rejected with `<file>:<line>: <message>`.

use spread_daemon::config::{self, ConfigError};

fn err(text: &str) -> ConfigError {
    match config::parse_str_with_resolver(text, "bad.conf", &config::offline_resolver) {
        Ok(c) => panic!("accepted: hash {}", c.hash()),
        Err(e) => e,
    }
}

fn check(text: &str, line: u32, needle: &str) {
    let e = err(text);
    let shown = e.to_string();
    assert_eq!(e.line, line, "{shown}");
    assert!(shown.starts_with(&format!("bad.conf:{line}: ")), "{shown}");
    assert!(shown.contains(needle), "{shown:?} does not contain {needle:?}");
}

#[test]
fn syntax_errors_name_the_line() {
    check("# c\n\nWindow=160\n", 3, "unexpected 'Window=160'");
    check("Spread_Segment 127.0.0.255 {\n  d1 127.0.0.1\n  INFO 127.0.0.2\n}\n", 3, "unexpected 'INFO'");
    check("Spread_Segment 127.0.0.255 {\n  d1 127.0.0.1\n", 3, "unexpected end of file");
    check("EventPriority = DEBUG\n", 1, "pDEBUG");
    check("Spread_Segment 127.0.0.255 { a 127.0.0.1 }\n\nFoo = 1\n", 3, "unexpected 'Foo'");
    check("DebugFlags = { PRINT\n  NOPE }\n", 2, "debug flag");
    check("Spread_Segment 127.0.0.255 { a 127.0.0.1 VirtualID =\n 1234567890 }\n", 2, "a number");
}

#[test]
fn semantic_errors_name_the_line() {
    check("Spread_Segment 127.0.0.255 {\n a 127.0.0.1\n a 127.0.0.2\n}\n", 3, "not unique");
    check("Spread_Segment 127.0.0.255 {\n a 127.0.0.1 VirtualID = 0\n}\n", 2, "greater than zero");
    check("\n\nSpread_Segment 127.0.0.255 { a 239.0.0.1 }\n", 3, "multicast");
    check("Spread_Segment 127.0.0.255 {\n a 127.0.0.1 {\n C 127.0.0.1\n }\n}\n", 2, "daemon entry");
    check("Spread_Segment 127.0.0.255 {\n a 127.0.0.1 { }\n}\n", 2, "no actual interfaces");
    check("ActiveIPVersion = IPv5\n", 1, "IPv4");
    check("\nWindow = 0\n", 2, "greater than zero");
    check("Spread_Segment 127.0.0.255:99999 { a 127.0.0.1 }\n", 1, "Port out of valid range");
    check("AccessControlPolicy = DENY\n", 1, "PERMIT");
    check("DaemonUser = abcdefghijklmnopqrstuvwxyzabcdefg\n", 1, "too long");
}

#[test]
fn end_of_file_checks() {
    check("\n\n", 3, "no Spread_Segment");
    check("ActiveIPVersion = IPv4\nSpread_Segment 127.0.0.255 { }\n", 3, "no daemon is listed");
    check(
        "Window = 10\nPersonalWindow = 11\nSpread_Segment 127.0.0.255 { a 127.0.0.1 }\n",
        4,
        "PersonalWindow > Window",
    );
    check(
        "AcceleratedRing = true\nAcceleratedWindow = 30\nSpread_Segment 127.0.0.255 { a 127.0.0.1 }",
        3,
        "AcceleratedWindow > PersonalWindow",
    );
}

#[test]
fn error_display_without_line() {
    let e = ConfigError::new("x.conf", 0, "whole-file problem");
    assert_eq!(e.to_string(), "x.conf: whole-file problem");
    let e = ConfigError::new("x.conf", 7, "here");
    assert_eq!(e.to_string(), "x.conf:7: here");
}

#[test]
fn load_reports_the_path() {
    let dir = std::env::temp_dir().join(format!("h4-cfgerr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("spread.conf");
    std::fs::write(&p, "Spread_Segment 127.0.0.255 {\n\tok 127.0.0.1\n\tok 127.0.0.2\n}\n").unwrap();
    let e = config::load(&p).unwrap_err();
    assert_eq!(e.to_string().split(": ").next().unwrap(), format!("{}:3", p.display()));
    let missing = config::load(&dir.join("none.conf")).unwrap_err();
    assert_eq!(missing.line, 0);
    assert!(missing.to_string().contains("none.conf"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_never_panics() {
    // Deterministic pseudo-random byte soup and truncations of a real file.
    let real = "Spread_Segment [ff02::1%lo]:4803 239.1.1.1 {\n a ::1 VirtualID = 3 { D C ::1 M fe80::1%lo } ;\n \"q\" 2001:db8::1\n}\nDebugFlags = { ALL !DATA_LINK }\nEventTimeStamp = \"%H\"\n";
    for cut in 0..=real.len() {
        if real.is_char_boundary(cut) {
            let _ = config::parse_str_with_resolver(&real[..cut], "cut", &config::offline_resolver);
        }
    }
    let alphabet: &[u8] = b" \t\n{}[]=:;!#\"'%.0123456789abcdefABCDEF:MCDxyzSpread_Segment VirtualID ";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        let mut s = Vec::new();
        for _ in 0..(x % 80) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        let _ = config::parse_str_with_resolver(&String::from_utf8_lossy(&s), "fuzz", &config::offline_resolver);
    }
}

#[test]
fn hostile_input_stays_fast() {
    // One long line of negated flags: each '!' must not rescan the line.
    let mut s = String::from("DebugFlags = { ALL");
    for _ in 0..20_000 {
        s.push_str(" !DATA_LINK");
    }
    s.push_str(" }\nSpread_Segment 127.0.0.255 { a 127.0.0.1 }\n");
    let t = std::time::Instant::now();
    let c = config::parse_str_with_resolver(&s, "big", &config::offline_resolver).unwrap();
    assert_eq!(c.debug_flags, !0x2);
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
}
