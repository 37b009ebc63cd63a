//! Differential cases: each configuration below was run through the original
//! 5.0.1 daemon (`spread -n <absent> -c <case>`), and its outcome recorded:
//! either the configuration hash it logged plus every daemon's name and VID,
//! or a fatal configuration error. Our parser must agree on every case.
//!
//! Markers: `@@MANYn@@` expands to n daemons, `@@SEGn@@` to n segments; the
//! case `cr_lf_file` is fed with CR-LF line ends and `tabs_vt` with a vertical
//! tab before `d1` (both as they were given to the original).

mod toml_util;

use spread_daemon::config;

enum Expect {
    Ok(u32, &'static [(&'static str, u32)]),
    Err,
}

struct Case {
    name: &'static str,
    text: &'static str,
    expect: Expect,
}

fn expand(name: &str, text: &str) -> String {
    let many = |n: usize| -> String {
        (0..n).map(|i| format!("\tn{} 10.0.{}.{}", i, i / 200, i % 200 + 1)).collect::<Vec<_>>().join("\n")
    };
    let segs = |n: usize| -> String {
        (0..n)
            .map(|i| format!("Spread_Segment 10.{i}.0.255:47100 {{ s{i} 10.{i}.0.1 }}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut t = text
        .replace("@@MANY129@@", &many(129))
        .replace("@@MANY128@@", &many(128))
        .replace("@@SEG21@@", &segs(21))
        .replace("@@SEG20@@", &segs(20));
    if name == "cr_lf_file" {
        t = t.replace('\n', "\r\n");
    }
    if name == "tabs_vt" {
        t = t.replace("d1", "\u{0b}d1");
    }
    t
}

#[test]
fn agrees_with_the_original() {
    let mut failures = Vec::new();
    for c in CASES {
        let text = expand(c.name, c.text);
        let got = config::parse_str_with_resolver(&text, c.name, &config::offline_resolver);
        match (&c.expect, &got) {
            (Expect::Err, Err(_)) => {}
            (Expect::Ok(hash, daemons), Ok(cfg)) => {
                let ours: Vec<(String, u32)> = cfg.daemons.iter().map(|d| (d.name.clone(), d.vid)).collect();
                let theirs: Vec<(String, u32)> = daemons.iter().map(|(n, v)| (n.to_string(), *v)).collect();
                if cfg.hash() != *hash || ours != theirs {
                    failures.push(format!(
                        "{}: hash {} vs {}, daemons {:?} vs {:?}",
                        c.name,
                        cfg.hash(),
                        hash,
                        ours,
                        theirs
                    ));
                }
            }
            (Expect::Err, Ok(cfg)) => {
                failures.push(format!("{}: accepted (hash {}) but the original rejects it", c.name, cfg.hash()))
            }
            (Expect::Ok(..), Err(e)) => {
                failures.push(format!("{}: rejected ({e}) but the original accepts it", c.name))
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// Every case the original accepts, converted to the TOML form
/// (`--convert-config`) and loaded again: same configuration, same hash.
#[test]
fn toml_form_round_trips() {
    let mut failures = Vec::new();
    let mut n = 0;
    for c in CASES {
        if !matches!(c.expect, Expect::Ok(..)) {
            continue;
        }
        n += 1;
        let text = expand(c.name, c.text);
        if let Err(e) = toml_util::round_trip(&text, c.name) {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(n > 50, "only {n} cases");
    assert!(failures.is_empty(), "{} of {n} cases do not round-trip:\n{}", failures.len(), failures.join("\n\n"));
}

const CASES: &[Case] = &[
    Case {
        name: "basic",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	d1	127.0.0.1
}
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "sample_minimal",
        text: r##"Spread_Segment 127.0.0.255
{
	localhost		127.0.0.1
}
"##,
        expect: Expect::Ok(970868126, &[("localhost", 482711334)]),
    },
    Case {
        name: "default_port_zero",
        text: r##"Spread_Segment 127.0.0.255:0 { localhost 127.0.0.1 }
"##,
        expect: Expect::Ok(970868126, &[("localhost", 482711334)]),
    },
    Case {
        name: "name_only_localhost",
        text: r##"ActiveIPVersion = IPv4
Spread_Segment 127.0.0.255:47100 { localhost }
"##,
        expect: Expect::Ok(1491999243, &[("localhost", 482711334)]),
    },
    Case {
        name: "address_only",
        text: r##"Spread_Segment 127.0.0.255:47100 { 127.0.0.1 127.0.0.2 }
"##,
        expect: Expect::Ok(1502146408, &[("127.0.0.1", 3409748320), ("127.0.0.2", 2163772977)]),
    },
    Case {
        name: "string_ipaddr_ambiguity",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	a 127.0.0.1
	  127.0.0.2
	b 127.0.0.3
}
"##,
        expect: Expect::Ok(1286771750, &[("a", 2489203003), ("127.0.0.2", 2163772977), ("b", 1728699743)]),
    },
    Case {
        name: "semicolon_separates",
        text: r##"ActiveIPVersion = IPv4
Spread_Segment 127.0.0.255:47100 {
	localhost ;
	127.0.0.2
}
"##,
        expect: Expect::Ok(47763748, &[("localhost", 482711334), ("127.0.0.2", 2163772977)]),
    },
    Case {
        name: "name_ending_semicolon",
        text: r##"Spread_Segment 127.0.0.255:47100 { x; 127.0.0.1 }
"##,
        expect: Expect::Ok(1351959703, &[("x;", 2640332784)]),
    },
    Case {
        name: "explicit_vid",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	a 127.0.0.1 VirtualID = 5
	b 127.0.0.2 VirtualID = 999999999
	c 127.0.0.3
}
"##,
        expect: Expect::Ok(154185235, &[("a", 5), ("b", 999999999), ("c", 2466198569)]),
    },
    Case {
        name: "vid_zero",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 VirtualID = 0 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "vid_ten_digits",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 VirtualID = 1000000000 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "vid_collides_with_auto",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	a 127.0.0.1 VirtualID = 348480928
	d2 127.0.0.2
}
"##,
        expect: Expect::Err,
    },
    Case {
        name: "dup_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 a 127.0.0.2 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "dup_addr",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 b 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "same_addr_other_port",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
Spread_Segment 127.0.0.255:47110 { b 127.0.0.1 }
"##,
        expect: Expect::Ok(876595884, &[("a", 2489203003), ("b", 1728699743)]),
    },
    Case {
        name: "same_addr_same_port_two_segments",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
Spread_Segment 127.0.1.255:47100 { b 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "multi_segment",
        text: r##"Spread_Segment 10.0.0.255:47100 {
	n1 10.0.0.1
	n2 10.0.0.2
}
Spread_Segment 10.0.1.255:47120 {
	n3 10.0.1.1
}
Spread_Segment 239.1.2.3 {
	n4 10.0.2.1
}
"##,
        expect: Expect::Ok(
            3233459888,
            &[("n1", 1249384167), ("n2", 3002951344), ("n3", 130749390), ("n4", 1426566386)],
        ),
    },
    Case {
        name: "extra_seg_addrs",
        text: r##"Spread_Segment 239.1.2.3:47100 239.1.2.4 10.0.0.255 10.0.1.255 10.0.2.255 {
	n1 10.0.0.1
}
"##,
        expect: Expect::Ok(3293051961, &[("n1", 1249384167)]),
    },
    Case {
        name: "too_many_seg_addrs",
        text: r##"Spread_Segment 239.1.2.3:47100 239.1.2.4 10.0.0.255 10.0.1.255 10.0.2.255 10.0.3.255 {
	n1 10.0.0.1
}
"##,
        expect: Expect::Err,
    },
    Case {
        name: "extra_seg_addr_with_port",
        text: r##"Spread_Segment 239.1.2.3:47100 239.1.2.4:47100 { n1 10.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "exclude_seg_addrs",
        text: r##"ExcludeSegAddrsFromHash = true
Spread_Segment 239.1.2.3:47100 239.1.2.4 { n1 10.0.0.1 }
"##,
        expect: Expect::Ok(491088037, &[("n1", 1249384167)]),
    },
    Case {
        name: "exclude_after_segment",
        text: r##"Spread_Segment 239.1.2.3:47100 239.1.2.4 { n1 10.0.0.1 }
ExcludeSegAddrsFromHash = yes
"##,
        expect: Expect::Ok(491088037, &[("n1", 1249384167)]),
    },
    Case {
        name: "accelerated_true",
        text: r##"AcceleratedRing = true
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(3980360316, &[("d1", 1552775919)]),
    },
    Case {
        name: "accelerated_false",
        text: r##"AcceleratedRing = False
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "accel_window_too_big",
        text: r##"AcceleratedRing = true
AcceleratedWindow = 21
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "accel_window_big_not_accel",
        text: r##"AcceleratedWindow = 21
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "personal_gt_window",
        text: r##"Window = 10
PersonalWindow = 11
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "window_zero",
        text: r##"Window = 0
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "window_no_spaces",
        text: r##"Window=160
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "interfaces_ok",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	d1 127.0.0.1 {
		D 127.0.0.1
		C 127.0.0.1
		M C 10.9.9.9
		D C M 10.9.9.8
	}
}
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "interfaces_all_letterless",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { 10.1.1.1 127.0.0.1 } }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "interfaces_no_daemon_entry",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { C 127.0.0.1 D 10.1.1.1 } }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "interfaces_unspecified_daemon",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { D 0.0.0.0 C 127.0.0.1 } }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "interfaces_empty",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { } }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "interfaces_letter_without_addr",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { D 127.0.0.1 C } }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "interfaces_eleven",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { 127.0.0.1 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 10.0.0.8 10.0.0.9 10.0.0.10 } }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "interfaces_ten",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { 127.0.0.1 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 10.0.0.8 10.0.0.9 } }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "vid_then_interfaces_then_semicolon",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	d1 127.0.0.1 VirtualID = 7 { D 127.0.0.1 } ;
	d2 127.0.0.2 ;
}
"##,
        expect: Expect::Ok(461872955, &[("d1", 7), ("d2", 348480928)]),
    },
    Case {
        name: "interfaces_before_vid",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { D 127.0.0.1 } VirtualID = 7 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "ipv6_basic",
        text: r##"Spread_Segment [ff02::1:2:3]:47100 {
	six ::1
	other fe80::1234:5678
}
"##,
        expect: Expect::Ok(1111576434, &[("six", 2550157838), ("other", 1716996085)]),
    },
    Case {
        name: "ipv6_no_port",
        text: r##"Spread_Segment ff02::1:2:3 { six ::1 }
"##,
        expect: Expect::Ok(969144004, &[("six", 2550157838)]),
    },
    Case {
        name: "ipv6_addr_only_name",
        text: r##"Spread_Segment [ff02::1]:47100 { ::1 2001:db8::1 }
"##,
        expect: Expect::Ok(2358890007, &[("::1", 1745371443), ("2001:db8::1", 2152862048)]),
    },
    Case {
        name: "ipv6_if_suffix",
        text: r##"Spread_Segment [ff02::1%lo]:47100 { fe80::1%lo }
"##,
        expect: Expect::Ok(2488401254, &[("fe80::1", 2351853139)]),
    },
    Case {
        name: "ipv6_full_form",
        text: r##"Spread_Segment [ff02:0:0:0:0:0:0:1]:47100 { 2001:0db8:0000:0000:0000:0000:0000:0001 }
"##,
        expect: Expect::Ok(4288846751, &[("2001:0db8:0000:0000", 3697069953)]),
    },
    Case {
        name: "ipv6_nonmulticast_segment",
        text: r##"Spread_Segment [2001:db8::ff]:47100 { six 2001:db8::1 }
"##,
        expect: Expect::Ok(2021626976, &[("six", 2550157838)]),
    },
    Case {
        name: "mixed_families",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 b ::1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "v6_active_v4_daemon",
        text: r##"ActiveIPVersion = IPv6
Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "active_ip_bad",
        text: r##"ActiveIPVersion = IPv5
Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "active_after_daemons_mismatch",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
ActiveIPVersion = IPv6
"##,
        expect: Expect::Err,
    },
    Case {
        name: "active_after_daemons_same",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
ActiveIPVersion = IPv4
"##,
        expect: Expect::Ok(3226094153, &[("a", 2489203003)]),
    },
    Case {
        name: "empty_segment_first",
        text: r##"Spread_Segment 127.0.1.255:47110 { }
Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "empty_segment_later",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
Spread_Segment 127.0.1.255:47110 { }
"##,
        expect: Expect::Ok(3548797493, &[("a", 2489203003)]),
    },
    Case {
        name: "empty_segment_with_active",
        text: r##"ActiveIPVersion = IPv4
Spread_Segment 127.0.1.255:47110 { }
Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
"##,
        expect: Expect::Ok(557783140, &[("a", 2489203003)]),
    },
    Case {
        name: "no_segments",
        text: r##"Window = 100
"##,
        expect: Expect::Err,
    },
    Case {
        name: "no_daemons",
        text: r##"ActiveIPVersion = IPv4
Spread_Segment 127.0.1.255:47110 { }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "multicast_daemon",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 239.1.1.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "unspecified_daemon",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 0.0.0.0 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "unspecified_segment",
        text: r##"Spread_Segment 0.0.0.0:47100 { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "numeric_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { 12345 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "keyword_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { INFO 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "quoted_keyword_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { "INFO" 127.0.0.1 'M' 127.0.0.2 }
"##,
        expect: Expect::Ok(3663064837, &[("INFO", 1629691086), ("M", 3323278024)]),
    },
    Case {
        name: "quoted_name_with_space",
        text: r##"Spread_Segment 127.0.0.255:47100 { "my daemon" 127.0.0.1 }
"##,
        expect: Expect::Ok(378828650, &[("my daemon", 3754114532)]),
    },
    Case {
        name: "empty_quoted_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { "" 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "long_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { abcdefghijklmnopqrstuvwxyz 127.0.0.1 }
"##,
        expect: Expect::Ok(466584337, &[("abcdefghijklmnopqrs", 3919549666)]),
    },
    Case {
        name: "long_names_collide",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	abcdefghijklmnopqrsXXX 127.0.0.1
	abcdefghijklmnopqrsYYY 127.0.0.2
}
"##,
        expect: Expect::Err,
    },
    Case {
        name: "letter_name_M",
        text: r##"Spread_Segment 127.0.0.255:47100 { M 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "bang_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { !x 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "bang_at_eol",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
DebugFlags = { PRINT EXIT CONFIGURATION !
}
"##,
        expect: Expect::Err,
    },
    Case {
        name: "comments_and_hash_in_name",
        text: r##"# top comment
Spread_Segment 127.0.0.255:47100 { # trailing
	ab#cd 127.0.0.1   # comment after
}
"##,
        expect: Expect::Err,
    },
    Case {
        name: "unknown_keyword",
        text: r##"Foo = 1
Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "leading_zero_octet",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.000.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "bad_octet",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 256.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "port_out_of_range",
        text: r##"Spread_Segment 127.0.0.255:65536 { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "too_many_daemons",
        text: r##"Spread_Segment 10.0.0.255:47100 {
@@MANY129@@
}
"##,
        expect: Expect::Err,
    },
    Case {
        name: "exactly_128_daemons",
        text: r##"Spread_Segment 10.0.0.255:47100 {
@@MANY128@@
}
"##,
        expect: Expect::Ok(
            3189866261,
            &[
                ("n0", 2755577563),
                ("n1", 1249384167),
                ("n2", 3002951344),
                ("n3", 130749390),
                ("n4", 1426566386),
                ("n5", 4245651607),
                ("n6", 3334017611),
                ("n7", 1345759468),
                ("n8", 239969279),
                ("n9", 931625478),
                ("n10", 563993087),
                ("n11", 3552983285),
                ("n12", 2904877675),
                ("n13", 1327247759),
                ("n14", 3048144319),
                ("n15", 437904739),
                ("n16", 1834449061),
                ("n17", 3475652445),
                ("n18", 1472679765),
                ("n19", 2163186765),
                ("n20", 3948664727),
                ("n21", 1882645639),
                ("n22", 1559868449),
                ("n23", 696209609),
                ("n24", 2639312782),
                ("n25", 1311120346),
                ("n26", 307997822),
                ("n27", 4179852726),
                ("n28", 2907628798),
                ("n29", 2192806640),
                ("n30", 4058835548),
                ("n31", 182033229),
                ("n32", 3043973382),
                ("n33", 4077802267),
                ("n34", 2568069247),
                ("n35", 758729828),
                ("n36", 2615100734),
                ("n37", 398998458),
                ("n38", 375012458),
                ("n39", 1902506344),
                ("n40", 1600384611),
                ("n41", 2097654462),
                ("n42", 1826551181),
                ("n43", 2864116316),
                ("n44", 1741482237),
                ("n45", 2605830438),
                ("n46", 1276194674),
                ("n47", 3406343755),
                ("n48", 691693441),
                ("n49", 596335931),
                ("n50", 3727417844),
                ("n51", 3900306288),
                ("n52", 2214708961),
                ("n53", 487980747),
                ("n54", 2359451334),
                ("n55", 1627161691),
                ("n56", 89862726),
                ("n57", 1804272748),
                ("n58", 4203750340),
                ("n59", 3727353806),
                ("n60", 2756252223),
                ("n61", 3600479718),
                ("n62", 2918558595),
                ("n63", 4098931076),
                ("n64", 3103344750),
                ("n65", 2671777224),
                ("n66", 3207299262),
                ("n67", 527450782),
                ("n68", 4016564214),
                ("n69", 3784393877),
                ("n70", 1149952302),
                ("n71", 960220080),
                ("n72", 862998205),
                ("n73", 526460855),
                ("n74", 3203392354),
                ("n75", 3587478099),
                ("n76", 1105454884),
                ("n77", 3562278174),
                ("n78", 3053997331),
                ("n79", 3858312768),
                ("n80", 1134605169),
                ("n81", 226412042),
                ("n82", 1995923374),
                ("n83", 626309386),
                ("n84", 4265603169),
                ("n85", 2995049896),
                ("n86", 797035584),
                ("n87", 2458998469),
                ("n88", 3078020688),
                ("n89", 127794009),
                ("n90", 1471836655),
                ("n91", 1764333525),
                ("n92", 1722453339),
                ("n93", 2031529155),
                ("n94", 1934009431),
                ("n95", 2465261391),
                ("n96", 1330497558),
                ("n97", 244400234),
                ("n98", 149240070),
                ("n99", 1277149850),
                ("n100", 2562759612),
                ("n101", 3021001020),
                ("n102", 1740157677),
                ("n103", 1661315175),
                ("n104", 3693176303),
                ("n105", 1229570902),
                ("n106", 121192046),
                ("n107", 22162604),
                ("n108", 1114484234),
                ("n109", 4037774747),
                ("n110", 4141836455),
                ("n111", 841046430),
                ("n112", 4173063556),
                ("n113", 483307777),
                ("n114", 2883374599),
                ("n115", 1376640206),
                ("n116", 329441373),
                ("n117", 1323522117),
                ("n118", 3300050022),
                ("n119", 35829665),
                ("n120", 3793686065),
                ("n121", 1801261091),
                ("n122", 3757898353),
                ("n123", 3207215532),
                ("n124", 2673504925),
                ("n125", 3326984551),
                ("n126", 923182135),
                ("n127", 3471332564),
            ],
        ),
    },
    Case {
        name: "too_many_segments",
        text: r##"@@SEG21@@
"##,
        expect: Expect::Err,
    },
    Case {
        name: "exactly_20_segments",
        text: r##"@@SEG20@@
"##,
        expect: Expect::Ok(
            1689214562,
            &[
                ("s0", 3421496077),
                ("s1", 63623582),
                ("s2", 3331938304),
                ("s3", 1568114402),
                ("s4", 2231424780),
                ("s5", 3840380680),
                ("s6", 1059178107),
                ("s7", 468517162),
                ("s8", 212921514),
                ("s9", 4227026007),
                ("s10", 1495613456),
                ("s11", 2267849134),
                ("s12", 2242413293),
                ("s13", 956426377),
                ("s14", 418453948),
                ("s15", 817973440),
                ("s16", 801952475),
                ("s17", 101613207),
                ("s18", 2610670795),
                ("s19", 3647350663),
            ],
        ),
    },
    Case {
        name: "all_params",
        text: r##"EventTimeStamp = "[%a %d %b %Y %H:%M:%S]"
EventPreciseTimeStamp
EventPriority = INFO
DebugFlags = { ALL !DATA_LINK !EVENTS }
DangerousMonitor = false
SocketPortReuse = AUTO
RuntimeDir = /var/run/spread
DaemonUser = spread
DaemonGroup = spread
RequiredAuthMethods = "   "
AllowedAuthMethods = "NULL IP"
AccessControlPolicy = "PERMIT"
MaxSessionMessages = 5000
Window = 160
PersonalWindow = 20
AcceleratedWindow = 15
TokenTimeout = 1250
HurryTimeout = 500
AliveTimeout = 250
JoinTimeout = 250
RepTimeout = 625
SegTimeout = 500
GatherTimeout = 1250
FormTimeout = 1250
LookupTimeout = 30000
WideAreaNetwork = false
IgnoreMulticastJoinErrors = false
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "bad_policy",
        text: r##"AccessControlPolicy = DENY
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "empty_runtime_dir",
        text: r##"RuntimeDir = ""
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "user_too_long",
        text: r##"DaemonUser = abcdefghijklmnopqrstuvwxyzabcdefg
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "timeout_zero",
        text: r##"TokenTimeout = 0
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "partial_timeouts",
        text: r##"TokenTimeout = 1000
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "trival_bad",
        text: r##"SocketPortReuse = true
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "bool_bad",
        text: r##"DangerousMonitor = on
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "timestamp_missing_value",
        text: r##"EventTimeStamp =
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "priority_bad",
        text: r##"EventPriority = DEBUG
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "unclosed_segment",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1
"##,
        expect: Expect::Err,
    },
    Case {
        name: "vid_in_param_position",
        text: r##"VirtualID = 3
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "cr_lf_file",
        text: r##"Spread_Segment 127.0.0.255:47100 {
	d1 127.0.0.1
}
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "tabs_vt",
        text: r##"Spread_Segment	127.0.0.255:47100	{	d1	127.0.0.1	}
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "debugflags_bad_token",
        text: r##"DebugFlags = { PRINT FOO }
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "segment_port_on_v6_unbracketed",
        text: r##"Spread_Segment ff02::1:47100 { six ::1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "ipv4_port_in_daemon",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1:47100 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "name_then_ipport",
        text: r##"Spread_Segment 127.0.0.255:47100 { 127.0.0.1:5 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "three_daemons_pcap",
        text: r##"Spread_Segment 10.98.0.255:34823 {
	d1	10.98.0.1
	d2	10.98.0.2
	d3	10.98.0.3
}
DaemonUser = nobody
DaemonGroup = nogroup
RuntimeDir = <RUNTIME_DIR>
EventTimeStamp
EventPreciseTimeStamp
DebugFlags = { PRINT EXIT CONFIGURATION MEMBERSHIP }
"##,
        expect: Expect::Ok(3053132190, &[("d1", 1552775919), ("d2", 348480928), ("d3", 4014350958)]),
    },
    Case {
        name: "nonascii_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { dé 127.0.0.1 }
"##,
        expect: Expect::Ok(2705112739, &[("dé", 3449976168)]),
    },
    Case {
        name: "no_space_before_brace",
        text: r##"Spread_Segment 127.0.0.255:47100{a 127.0.0.1}
"##,
        expect: Expect::Ok(3226094153, &[("a", 2489203003)]),
    },
    Case {
        name: "ip_then_semicolon_glued",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1; }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "quoted_hash",
        text: r##"Spread_Segment 127.0.0.255:47100 { "a#b" 127.0.0.1 }
"##,
        expect: Expect::Ok(2344561781, &[("a#b", 920649755)]),
    },
    Case {
        name: "unterminated_quote",
        text: r##"Spread_Segment 127.0.0.255:47100 { "abc 127.0.0.1 }
"##,
        expect: Expect::Ok(1556658132, &[("\"abc", 3099688658)]),
    },
    Case {
        name: "double_bang",
        text: r##"DebugFlags = { ALL !!DATA_LINK CONFIGURATION }
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "bang_space_flag",
        text: r##"DebugFlags = { ALL ! DATA_LINK}
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "lowercase_keyword",
        text: r##"spread_segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "glued_keyword",
        text: r##"Spread_Segment127.0.0.255 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "bool_case",
        text: r##"DangerousMonitor = YeS
ExcludeSegAddrsFromHash = TRUE
Spread_Segment 239.0.0.1:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(2094711295, &[("d1", 1552775919)]),
    },
    Case {
        name: "ipv6_name_like",
        text: r##"Spread_Segment [ff02::1]:47100 { cafe:: dead::beef }
"##,
        expect: Expect::Ok(3013785552, &[("cafe::", 237286186), ("dead::beef", 2871647848)]),
    },
    Case {
        name: "ipv6_nine_groups",
        text: r##"Spread_Segment [ff02::1]:47100 { x 1:2:3:4:5:6:7:8:9 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "ipv6_mapped_v4_name",
        text: r##"Spread_Segment [ff02::1]:47100 { ::ffff:1.2.3.4 }
"##,
        expect: Expect::Ok(4055678253, &[("::ffff:1.2.3.4", 1956093858)]),
    },
    Case {
        name: "ipv6_bracket_no_port",
        text: r##"Spread_Segment [ff02::1] { six ::1 }
"##,
        expect: Expect::Ok(3290282739, &[("six", 2550157838)]),
    },
    Case {
        name: "ipv6_port_zero",
        text: r##"Spread_Segment [ff02::1]:0 { six ::1 }
"##,
        expect: Expect::Ok(3290282739, &[("six", 2550157838)]),
    },
    Case {
        name: "ipv6_loopback_segment",
        text: r##"Spread_Segment [::1]:47100 { six ::1 }
"##,
        expect: Expect::Ok(2529083130, &[("six", 2550157838)]),
    },
    Case {
        name: "ipv6_empty_if",
        text: r##"Spread_Segment [ff02::1]:47100 { fe80::1% }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "ipv6_compressed_long",
        text: r##"Spread_Segment [ff02::1]:47100 { n 1:2:3:4:5:6:7::8 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "ipv6_two_double_colons",
        text: r##"Spread_Segment [ff02::1]:47100 { n 1::2::3 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "name_with_colon",
        text: r##"Spread_Segment 127.0.0.255:47100 { a:b 127.0.0.1 }
"##,
        expect: Expect::Ok(3556691094, &[("a:b", 559132674)]),
    },
    Case {
        name: "name_with_percent_addr_name",
        text: r##"Spread_Segment [ff02::1]:47100 { fe80::abcd%lo }
"##,
        expect: Expect::Ok(3026073608, &[("fe80::abcd", 3872177493)]),
    },
    Case {
        name: "vid_without_value",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 VirtualID b 127.0.0.2 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "two_vids",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 VirtualID = 1 VirtualID = 2 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "explicit_vid_equal_each_other",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 VirtualID = 9 b 127.0.0.2 VirtualID = 9 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "semicolon_only_in_segment",
        text: r##"Spread_Segment 127.0.0.255:47100 { ; a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "double_semicolon",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 ; ; b 127.0.0.2 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "colon_token",
        text: r##"Spread_Segment 127.0.0.255:47100 { a 127.0.0.1 : }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "equals_in_segment",
        text: r##"Spread_Segment 127.0.0.255:47100 = { a 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "priority_all_levels",
        text: r##"EventPriority = pDEBUG
EventPriority = INFO
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "max_session_negative",
        text: r##"MaxSessionMessages = -1
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "accel_window_zero",
        text: r##"AcceleratedRing = true
AcceleratedWindow = 0
Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
"##,
        expect: Expect::Ok(3980360316, &[("d1", 1552775919)]),
    },
    Case {
        name: "accelerated_after_segments",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 }
AcceleratedRing = true
"##,
        expect: Expect::Ok(3980360316, &[("d1", 1552775919)]),
    },
    Case {
        name: "interface_with_port",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { D 127.0.0.1:47100 } }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "interface_v6_for_v4_daemon",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { D 127.0.0.1 C ::1 } }
"##,
        expect: Expect::Ok(1331157145, &[("d1", 1552775919)]),
    },
    Case {
        name: "interface_unspecified_v6_for_v4",
        text: r##"Spread_Segment 127.0.0.255:47100 { d1 127.0.0.1 { D :: } }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "many_daemons_over_segments",
        text: r##"Spread_Segment 10.0.0.255:47100 {
@@MANY128@@
}
Spread_Segment 10.1.0.255:47100 { extra 10.1.0.1 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "tabs_in_quoted",
        text: r##"Spread_Segment 127.0.0.255:47100 { "a	b" 127.0.0.1 }
"##,
        expect: Expect::Ok(3657579921, &[("a\tb", 2166469339)]),
    },
    Case { name: "empty_file", text: r##""##, expect: Expect::Err },
    Case {
        name: "only_comment",
        text: r##"# nothing here
"##,
        expect: Expect::Err,
    },
    Case {
        name: "number_after_segment_brace",
        text: r##"Spread_Segment 127.0.0.255:47100 { 5 }
"##,
        expect: Expect::Err,
    },
    Case {
        name: "hex_name",
        text: r##"Spread_Segment 127.0.0.255:47100 { abcd 127.0.0.1 beef 127.0.0.2 }
"##,
        expect: Expect::Ok(3498015474, &[("abcd", 122868688), ("beef", 1735803730)]),
    },
];

/// Names that are not plain UTF-8 text, as raw bytes; outcomes recorded from
/// the 5.0.1 daemon. The stored name bytes, VIDs and hash must match exactly.
#[test]
fn raw_byte_names_agree_with_the_original() {
    type Named<'a> = &'a [(&'a [u8], u32)];
    let cases: &[(&[u8], u32, Named)] = &[
        // A 2-byte character cut in half by the 19-byte limit.
        (
            "Spread_Segment 127.0.0.255:47100 {\n\tabcdefghijklmnopqr\u{e9} 127.0.0.1\n}\n".as_bytes(),
            3_912_956_194,
            &[(b"abcdefghijklmnopqr\xc3", 1_647_065_039)],
        ),
        // Bytes that are not UTF-8 at all (high bytes count as negative).
        (
            b"Spread_Segment 127.0.0.255:47100 {\n\td\xff 127.0.0.1\n\t\xe9t\xe9 127.0.0.2\n}\n",
            2_981_105_468,
            &[(b"d\xff", 1_226_096_776), (b"\xe9t\xe9", 1_688_989_192)],
        ),
        // A NUL inside a quoted name: cut there, and the last byte dropped.
        (b"Spread_Segment 127.0.0.255:47100 {\n\t\"ab\x00cd\" 127.0.0.1\n}\n", 3_226_094_153, &[(b"a", 2_489_203_003)]),
        (
            b"Spread_Segment 127.0.0.255:47100 {\n\t\"ab\x00cd\" 127.0.0.1\n\tab 127.0.0.2\n}\n",
            2_707_763_234,
            &[(b"a", 2_489_203_003), (b"ab", 441_905_524)],
        ),
    ];
    for (text, hash, daemons) in cases {
        let c = config::parse_bytes(text, "raw").unwrap();
        assert_eq!(c.hash(), *hash, "{}", String::from_utf8_lossy(text));
        let got: Vec<(&[u8], u32)> = c.daemons.iter().map(|d| (d.name_bytes.as_slice(), d.vid)).collect();
        assert_eq!(&got, daemons);
    }
}
