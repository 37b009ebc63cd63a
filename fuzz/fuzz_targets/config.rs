//! The spread.conf lexer and parser on arbitrary text (the bytes read as
//! UTF-8 with invalid sequences replaced), with a resolver that never leaves
//! the machine. What parses goes on the way the daemon uses it: its hash, the
//! membership timeouts, picking this daemon by name and by address, the reload
//! comparison, and an engine built from each daemon entry, which must accept a
//! login. The same text is also read as the TOML form, and what parses as
//! spread.conf must come back the same through `--convert-config`'s TOML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rspread_fuzz::Driver;
use spread_daemon::config::{self, hash, offline_resolver, reload_outcome};
use spread_daemon::engine::EngineConfig;

fuzz_target!(|data: &[u8]| {
    let _ = hash::conf_hash_of_bytes(data);
    let _ = hash::vid_of_bytes(data);
    let text = String::from_utf8_lossy(data);
    let first = config::parse_str_with_resolver(&text, "fuzz.conf", &offline_resolver);
    let second = config::parse_str_with_resolver(&text, "fuzz.conf", &offline_resolver);
    assert_eq!(first, second, "parsing the same text twice gave different results");
    if let Ok(t) = config::parse_toml_str_with_resolver(&text, "fuzz.toml", &offline_resolver) {
        let _ = t.hash();
    }
    let c = match first {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if c.daemons.iter().all(|d| d.name.as_bytes() == d.name_bytes) {
        let toml = config::convert_bytes(text.as_bytes(), "fuzz.conf", &offline_resolver)
            .unwrap_or_else(|e| panic!("a file that parses does not convert: {e}"));
        let back = config::parse_toml_str_with_resolver(&toml, "fuzz.toml", &offline_resolver)
            .unwrap_or_else(|e| panic!("the converted TOML does not load: {e}\n{toml}"));
        assert_eq!(back.hash(), c.hash(), "the TOML form has another hash:\n{toml}");
        assert_eq!(back.daemons.len(), c.daemons.len());
    }
    let _ = (c.hash(), c.wide_area(), c.accelerated_ring(), c.membership_timeouts());
    // `hash_text` is the hashed text, lossy only where a name cut at 19 bytes is not UTF-8.
    if c.daemons.iter().all(|d| d.name.as_bytes() == d.name_bytes) {
        assert_eq!(hash::conf_hash_of(&c.hash_text), c.hash(), "the hash is the hash of the hashed text");
    }
    let n = c.daemons.len().min(4);
    for i in 0..n {
        let d = &c.daemons[i];
        assert_eq!(c.index_by_name_bytes(&d.name_bytes), Some(i), "daemon names are unique");
        let locals = [d.addr];
        let me = c.find_me_among(Some(&d.name), &locals);
        let _ = c.find_me_among(None, &locals);
        if let Ok(me) = me {
            assert_eq!(me.index, i);
        }
        for j in 0..n {
            let _ = reload_outcome(&c, i, &c, j);
        }
        let mut d = Driver::with_config(EngineConfig::from_config(&c, i, 1));
        d.login("fz", true);
    }
    let _ = reload_outcome(&c, 0, &config::default_config(), 0);
});
