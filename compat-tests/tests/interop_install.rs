//! `make install-files PREFIX=<tmp>` (the copy half of `make install`; it
//! does not run cargo, so it can run inside `cargo test`): the installed
//! layout, the generated pkg-config files, and a C program built with
//! `pkg-config --cflags --libs libspread` that runs on the installed library.
//! Needs `make build` first (build/lib and target/release/spread).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compat_tests::paths;
use compat_tests::tempdir::TempDir;

fn run(cmd: &mut Command, what: &str) -> String {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut child = child;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: timed out");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{what}: {e}"),
        }
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn make_install(prefix: &Path) {
    // the libraries and the daemon must have been built (`make build`)
    paths::c_library("libspread.so.3");
    let daemon = paths::spread_binary();
    let root = paths::workspace_root();
    let mut cmd = Command::new("make");
    cmd.current_dir(&root)
        .arg("--no-print-directory")
        .arg("install-files")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("TARGET_DIR={}", daemon.parent().and_then(Path::parent).unwrap_or(&root.join("target")).display()))
        // not the jobserver of an enclosing make
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    run(&mut cmd, "make install-files");
}

#[test]
fn install_layout_pkg_config_and_a_client() {
    let tmp = TempDir::new("install").expect("temp dir");
    let prefix = tmp.path().join("prefix");
    make_install(&prefix);

    // layout
    for f in [
        "include/sp.h",
        "include/sp_func.h",
        "include/sp_events.h",
        "include/fl.h",
        "lib/pkgconfig/libspread.pc",
        "lib/pkgconfig/libspread-core.pc",
        "lib/pkgconfig/libtspread-core.pc",
        "sbin/spread",
        "bin/spmonitor",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }
    for lib in ["libspread", "libspread-core", "libtspread-core"] {
        let libdir = prefix.join("lib");
        assert!(libdir.join(format!("{lib}.so.3.0.0")).is_file(), "{lib}.so.3.0.0 not installed");
        assert!(libdir.join(format!("{lib}.a")).is_file(), "{lib}.a not installed");
        assert_eq!(
            std::fs::read_link(libdir.join(format!("{lib}.so.3"))).expect("so.3 link"),
            PathBuf::from(format!("{lib}.so.3.0.0"))
        );
        assert_eq!(
            std::fs::read_link(libdir.join(format!("{lib}.so"))).expect("so link"),
            PathBuf::from(format!("{lib}.so.3"))
        );
        let pc = std::fs::read_to_string(libdir.join(format!("pkgconfig/{lib}.pc"))).expect("pc");
        assert!(pc.contains(&format!("prefix={}", prefix.display())), "{lib}.pc has no prefix line:\n{pc}");
        assert!(!pc.contains('@'), "{lib}.pc has an unreplaced placeholder:\n{pc}");
    }

    // a client built with pkg-config, run on the installed library
    let pc_path = prefix.join("lib/pkgconfig");
    let flags = run(
        Command::new("pkg-config").env("PKG_CONFIG_PATH", &pc_path).args(["--cflags", "--libs", "libspread"]),
        "pkg-config --cflags --libs libspread",
    );
    assert!(flags.contains("-lspread"), "pkg-config flags: {flags}");
    let exe = tmp.path().join("hello");
    let src = paths::workspace_root().join("compat-tests/abi-probe/hello.c");
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.arg(&src).arg("-o").arg(&exe).args(flags.split_whitespace()).arg("-ldl");
    run(&mut cc, "compiling hello.c with pkg-config flags");
    let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", prefix.join("lib")), "running hello");
    assert!(out.contains("version 1 5.0.1\n"), "{out}");
    assert!(out.contains("strerror Connection closed by Spread.\n"), "{out}");
    assert!(out.contains("clock runs\n"), "{out}");
    let from = out.lines().find_map(|l| l.strip_prefix("from ")).unwrap_or("");
    assert!(
        from.starts_with(&prefix.join("lib").display().to_string()),
        "SP_version was resolved from {from}, not from the installed library"
    );

    // the static archive links on its own (no LD_LIBRARY_PATH at run time)
    let exe_static = tmp.path().join("hello-static");
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.arg(&src)
        .arg("-I")
        .arg(prefix.join("include"))
        .arg("-o")
        .arg(&exe_static)
        .arg(prefix.join("lib/libtspread-core.a"))
        .args(["-lpthread", "-ldl", "-lm"]);
    run(&mut cc, "linking hello.c with libtspread-core.a");
    let out = run(&mut Command::new(&exe_static), "running the static hello");
    assert!(out.contains("version 1 5.0.1\n"), "{out}");
    let from = out.lines().find_map(|l| l.strip_prefix("from ")).unwrap_or("");
    assert!(from.ends_with("hello-static"), "SP_version should be inside the executable, found in {from}");
}

/// `make install-files PREFIX=/usr DESTDIR=<stage>`: what the original
/// installs and more (daemon, example programs, libraries, headers,
/// pkg-config, a sample spread.conf that a second install leaves alone, man
/// pages that render, a systemd unit), binaries and libraries stripped with
/// their debug info kept apart, and no DESTDIR in any RUNPATH.
#[test]
fn staged_install_layout_stripped_and_without_destdir_in_runpaths() {
    let tmp = TempDir::new("stage").expect("temp dir");
    let stage = tmp.path().join("stage");
    let install = || {
        paths::c_library("libspread.so.3");
        let daemon = paths::spread_binary();
        let root = paths::workspace_root();
        let mut cmd = Command::new("make");
        cmd.current_dir(&root)
            .args(["--no-print-directory", "install-files", "PREFIX=/usr"])
            .arg(format!("DESTDIR={}", stage.display()))
            .arg(format!(
                "TARGET_DIR={}",
                daemon.parent().and_then(Path::parent).unwrap_or(&root.join("target")).display()
            ))
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL");
        run(&mut cmd, "make install-files DESTDIR");
    };
    install();
    let usr = stage.join("usr");
    let mut files: Vec<String> =
        vec!["sbin/spread".into(), "etc/spread.conf".into(), "lib/systemd/system/spread.service".into()];
    for b in ["spmonitor", "spuser", "sptuser", "spflooder", "flush_user", "spsend", "sprecv", "spping"] {
        files.push(format!("bin/{b}"));
        files.push(format!("lib/debug/bin/{b}.debug"));
    }
    for l in ["libspread", "libspread-core", "libtspread-core"] {
        files.extend([format!("lib/{l}.so.3.0.0"), format!("lib/{l}.a"), format!("lib/pkgconfig/{l}.pc")]);
        files.push(format!("lib/debug/lib/{l}.so.3.0.0.debug"));
    }
    files.push("lib/debug/sbin/spread.debug".into());
    let pages = [
        "man1/spread.1",
        "man5/spread.conf.5",
        "man1/spuser.1",
        "man1/spflooder.1",
        "man1/spmonitor.1",
        "man3/libspread.3",
    ];
    for h in ["sp.h", "sp_func.h", "sp_events.h", "fl.h"] {
        files.push(format!("include/{h}"));
    }
    for p in pages {
        files.push(format!("share/man/{p}"));
    }
    for f in &files {
        assert!(usr.join(f).is_file(), "{f} not installed");
    }
    // Stripped, with a debug link; RUNPATHs name /usr/lib, never the stage.
    for f in ["sbin/spread", "bin/spmonitor", "bin/spuser", "bin/flush_user", "lib/libspread.so.3.0.0"] {
        let sections = run(Command::new("readelf").arg("-S").arg(usr.join(f)), "readelf -S");
        assert!(!sections.contains(".debug_info"), "{f} is not stripped");
        assert!(sections.contains(".gnu_debuglink"), "{f} has no debug link");
        let dynamic = run(Command::new("readelf").arg("-d").arg(usr.join(f)), "readelf -d");
        assert!(!dynamic.contains(&stage.display().to_string()), "{f} records the stage: {dynamic}");
        // the C examples link the installed library; spmonitor (Rust) links none
        if f.starts_with("bin/") && f != "bin/spmonitor" {
            assert!(dynamic.contains("[/usr/lib]"), "{f} RUNPATH: {dynamic}");
        }
    }
    let daemon_size = std::fs::metadata(usr.join("sbin/spread")).unwrap().len();
    assert!(daemon_size < 3 << 20, "sbin/spread is {daemon_size} bytes");
    // The unit runs the installed daemon in the foreground, reloads with HUP.
    let unit = std::fs::read_to_string(usr.join("lib/systemd/system/spread.service")).unwrap();
    for want in [
        "ExecStart=/usr/sbin/spread -c /usr/etc/spread.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(want), "spread.service lacks {want:?}:\n{unit}");
    }
    // The sample is a valid configuration; a second install keeps a changed one.
    let conf = usr.join("etc/spread.conf");
    let sample = std::fs::read_to_string(&conf).unwrap();
    spread_conf_parses(&sample);
    std::fs::write(&conf, "# mine\n").unwrap();
    install();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "# mine\n", "the second install overwrote etc/spread.conf");
    // Every page renders.
    if Command::new("man").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()) {
        for p in pages {
            let text =
                run(Command::new("man").arg("-l").arg(usr.join("share/man").join(p)).env("MANWIDTH", "80"), "man -l");
            assert!(text.contains("NAME"), "{p} rendered as:\n{text}");
        }
        let spread1 = run(Command::new("man").arg("-l").arg(usr.join("share/man/man1/spread.1")), "man -l");
        assert!(spread1.contains("/usr/etc/spread.conf"), "spread(1) names the installed path");
    } else {
        eprintln!("staged install: the man pages are not rendered: man is not installed");
    }
}

/// The sample configuration parses, as the daemon parses it.
fn spread_conf_parses(text: &str) {
    let c = spread_daemon::config::parse_str(text, "etc/spread.conf").unwrap_or_else(|e| panic!("sample: {e:?}"));
    assert_eq!(c.daemons.len(), 1, "one daemon on loopback");
}
