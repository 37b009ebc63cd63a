//! The menu, the table dialogs and their printouts, with the original's
//! texts and its way of reading answers (one line per answer, read like
//! `fgets` + `sscanf("%d")` / `sscanf("%s")`).
//!
//! Daemons are always listed segment by segment, in the order of the file,
//! with an empty line after each segment; tables are indexed by proc index
//! (the daemon's position in the file).

use super::packet::{FcTable, PartitionTable};
use super::{Io, Stop};
use crate::config::Config;

/// The menu, ending in the prompt.
pub const MENU: &str = "\n\
=============\n\
Monitor Menu:\n\
-------------\n\
\t0. Activate/Deactivate Status {all, none, Proc, CR}\n\
\n\
\t1. Define Partition\n\
\t2. Send   Partition\n\
\t3. Review Partition\n\
\t4. Cancel Partition Effects\n\
\n\
\t5. Define Flow Control\n\
\t6. Send   Flow Control\n\
\t7. Review Flow Control\n\
\n\
\t8. Terminate Spread Daemons {all, none, Proc, CR}\n\
\n\
\tr. Reload Configuration File\n\
\n\
\t9. Exit\n\
\n\
Monitor> ";

/// An empty line and the prompt, printed after most commands.
pub const PROMPT: &str = "\nMonitor> ";

/// What `sscanf(line, "%d", &v)` finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A number (returned 1).
    Number(i32),
    /// Something that is not a number (returned 0).
    NotANumber,
    /// Nothing but white space (returned EOF).
    Empty,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Read a decimal integer the way `%d` does: leading white space, an
/// optional sign, digits; what follows is ignored. An out-of-range value
/// becomes what the C library stores for it (the `long` limit cut to `int`).
pub fn scan_int(line: &[u8]) -> Scan {
    let mut i = line.iter().position(|&b| !is_space(b)).unwrap_or(line.len());
    if i == line.len() {
        return Scan::Empty;
    }
    let neg = match line[i] {
        b'-' => {
            i += 1;
            true
        }
        b'+' => {
            i += 1;
            false
        }
        _ => false,
    };
    if i == line.len() {
        return Scan::Empty;
    }
    let digits = line[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Scan::NotANumber;
    }
    let mut v: i64 = 0;
    for &d in &line[i..i + digits] {
        let d = i64::from(d - b'0');
        v = if neg { v.saturating_mul(10).saturating_sub(d) } else { v.saturating_mul(10).saturating_add(d) };
    }
    Scan::Number(v as i32)
}

/// The first white-space-delimited word of `line` (`%s`), if any.
pub fn scan_word(line: &[u8]) -> Option<&[u8]> {
    let start = line.iter().position(|&b| !is_space(b))?;
    let len = line[start..].iter().take_while(|&&b| !is_space(b)).count();
    Some(&line[start..start + len])
}

/// Next answer line; at end of input say goodbye and stop.
pub fn answer(io: &mut dyn Io) -> Result<Vec<u8>, Stop> {
    match io.read_line() {
        Some(l) => Ok(l),
        None => {
            io.print(b"Bye.\n");
            Err(Stop::Bye)
        }
    }
}

fn print_str(io: &mut dyn Io, s: &str) {
    io.print(s.as_bytes());
}

/// `partition` as the "Partition Map", then the prompt.
pub fn print_partition(conf: &Config, partition: &PartitionTable, io: &mut dyn Io) {
    print_str(io, "\n=============\nPartition Map:\n-------------\n\n");
    for seg in &conf.segments {
        for &p in &seg.daemons {
            io.print(b"\t");
            io.print(&conf.daemons[p].name_bytes);
            print_str(io, &format!("\t{}\n", partition[p]));
        }
        io.print(b"\n");
    }
    print_str(io, PROMPT);
}

/// Ask for a partition number for every daemon into `work` (no printout at
/// the end: the caller prints the map).
pub fn define_partition(conf: &Config, work: &mut PartitionTable, io: &mut dyn Io) -> Result<(), Stop> {
    print_str(io, "\n=============\nDefine Partition\n-------------\n\n");
    for seg in &conf.segments {
        for &p in &seg.daemons {
            loop {
                io.print(b"\t");
                io.print(&conf.daemons[p].name_bytes);
                io.print(b"\t");
                let line = answer(io)?;
                match scan_int(&line) {
                    Scan::Number(v) => {
                        work[p] = v as i16;
                        break;
                    }
                    _ => print_str(io, "Please enter a number\n"),
                }
            }
        }
        io.print(b"\n");
    }
    Ok(())
}

/// `fc` as the "Flow Control Parameters", then the prompt. The accelerated
/// windows are shown only when the configuration runs the accelerated ring.
pub fn print_flow_control(conf: &Config, accelerated: bool, fc: &FcTable, io: &mut dyn Io) {
    let window = fc.get(conf.daemons.len()).map_or(0, |e| e[0]);
    print_str(io, &format!("\n========================\nFlow Control Parameters:\n------------------------\n\nWindow size:  {window}\n\n"));
    for seg in &conf.segments {
        for &p in &seg.daemons {
            let name = &conf.daemons[p].name_bytes;
            io.print(b"\t");
            io.print(name);
            print_str(io, &format!(" personal window\t{}\n", fc[p][0]));
            if accelerated {
                io.print(b"\t");
                io.print(name);
                print_str(io, &format!(" accelerated window\t{}\n", fc[p][1]));
            }
        }
        io.print(b"\n");
    }
    print_str(io, PROMPT);
}

/// One flow-control answer: a number, or an empty answer for −1 ("leave
/// unchanged"); anything else is asked again.
fn fc_value(prompt: &[&[u8]], io: &mut dyn Io) -> Result<i16, Stop> {
    loop {
        for p in prompt {
            io.print(p);
        }
        let line = answer(io)?;
        match scan_int(&line) {
            Scan::Number(v) => return Ok(v as i16),
            Scan::Empty => return Ok(-1),
            Scan::NotANumber => print_str(io, "Please enter a number\n"),
        }
    }
}

/// Ask for the window and every daemon's personal (and, with the
/// accelerated ring, accelerated) window into `work`.
pub fn define_flow_control(conf: &Config, accelerated: bool, work: &mut FcTable, io: &mut dyn Io) -> Result<(), Stop> {
    print_str(io, "\n===================\nDefine Flow Control\n-------------------\n\n");
    let window = fc_value(&[b"    Window size: "], io)?;
    if let Some(e) = work.get_mut(conf.daemons.len()) {
        e[0] = window;
    }
    io.print(b"\n");
    for seg in &conf.segments {
        for &p in &seg.daemons {
            let name = conf.daemons[p].name_bytes.as_slice();
            work[p][0] = fc_value(&[b"\t", name, b" personal window\t"], io)?;
            if accelerated {
                work[p][1] = fc_value(&[b"\t", name, b" accelerated window\t"], io)?;
            }
        }
        io.print(b"\n");
    }
    Ok(())
}

/// One choice in a "which daemons" dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    All,
    None,
    One(usize),
}

/// Ask for daemon names (or `all` / `none`) until an empty line, calling
/// `pick` for each valid answer.
pub fn pick_procs(conf: &Config, prompt: &str, io: &mut dyn Io, pick: &mut dyn FnMut(Pick)) -> Result<(), Stop> {
    loop {
        let (line, word) = loop {
            print_str(io, prompt);
            let line = answer(io)?;
            let word = scan_word(&line).map(<[u8]>::to_vec);
            if word.is_some() || line.first() == Some(&b'\n') {
                break (line, word);
            }
            print_str(io, "Please enter a legal proc name, none, or all\n");
        };
        if line.first() == Some(&b'\n') {
            return Ok(());
        }
        let Some(word) = word else { continue };
        match word.as_slice() {
            b"all" => pick(Pick::All),
            b"none" => pick(Pick::None),
            w => match conf.index_by_name_bytes(w) {
                Some(i) => pick(Pick::One(i)),
                None => print_str(io, "Please! enter a legal proc name, none, or all\n"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::testio::TestIo;
    use spread_wire::daemon::MAX_PROCS_RING;

    fn conf(extra: &str) -> Config {
        crate::config::parse_str_with_resolver(
            &format!(
                "Spread_Segment 127.0.0.255:4803 {{\n da 127.0.0.1\n db 127.0.0.2\n}}\n\
                 Spread_Segment 127.0.1.255:4803 {{\n dc 127.0.1.1\n}}\n{extra}"
            ),
            "t.conf",
            &crate::config::offline_resolver,
        )
        .unwrap()
    }

    #[test]
    fn scanning_like_sscanf() {
        assert_eq!(scan_int(b"12\n"), Scan::Number(12));
        assert_eq!(scan_int(b"  -3xyz\n"), Scan::Number(-3));
        assert_eq!(scan_int(b"+7\n"), Scan::Number(7));
        assert_eq!(scan_int(b"0x10\n"), Scan::Number(0));
        assert_eq!(scan_int(b"abc\n"), Scan::NotANumber);
        assert_eq!(scan_int(b"-\n"), Scan::NotANumber);
        assert_eq!(scan_int(b"\n"), Scan::Empty);
        assert_eq!(scan_int(b"  \t\n"), Scan::Empty);
        assert_eq!(scan_int(b""), Scan::Empty);
        assert_eq!(scan_int(b"99999999999999999999999\n"), Scan::Number(-1));
        assert_eq!(scan_word(b"  da  x\n"), Some(&b"da"[..]));
        assert_eq!(scan_word(b" \n"), None);
    }

    #[test]
    fn partition_dialog_asks_again_and_prints_the_map() {
        let c = conf("");
        let mut io = TestIo::new(b"1\nx\n\n2\n-1\n");
        let mut work = [0i16; MAX_PROCS_RING];
        define_partition(&c, &mut work, &mut io).unwrap();
        assert_eq!(&work[..4], &[1, 2, -1, 0]);
        assert_eq!(
            io.output(),
            "\n=============\nDefine Partition\n-------------\n\n\
             \tda\t\tdb\tPlease enter a number\n\tdb\tPlease enter a number\n\tdb\t\n\
             \tdc\t\n"
        );
        let mut io = TestIo::new(b"");
        print_partition(&c, &work, &mut io);
        assert_eq!(
            io.output(),
            "\n=============\nPartition Map:\n-------------\n\n\tda\t1\n\tdb\t2\n\n\tdc\t-1\n\n\nMonitor> "
        );
    }

    #[test]
    fn partition_dialog_ends_at_end_of_input() {
        let c = conf("");
        let mut io = TestIo::new(b"1\n");
        let mut work = [0i16; MAX_PROCS_RING];
        assert_eq!(define_partition(&c, &mut work, &mut io), Err(Stop::Bye));
        assert!(io.output().ends_with("\tdb\tBye.\n"), "{}", io.output());
    }

    #[test]
    fn flow_control_dialog_empty_means_unchanged() {
        let c = conf("");
        let mut io = TestIo::new(b"100\n\nfoo\n30\n-1\n");
        let mut work = [[0i16; 2]; MAX_PROCS_RING];
        define_flow_control(&c, false, &mut work, &mut io).unwrap();
        assert_eq!(work[3][0], 100, "the window sits after the last daemon");
        assert_eq!(work[0], [-1, 0]);
        assert_eq!(work[1], [30, 0]);
        assert_eq!(work[2], [-1, 0]);
        assert_eq!(
            io.output(),
            "\n===================\nDefine Flow Control\n-------------------\n\n    Window size: \n\
             \tda personal window\t\tdb personal window\tPlease enter a number\n\tdb personal window\t\n\
             \tdc personal window\t\n"
        );
        let mut io = TestIo::new(b"");
        print_flow_control(&c, false, &work, &mut io);
        assert_eq!(
            io.output(),
            "\n========================\nFlow Control Parameters:\n------------------------\n\nWindow size:  100\n\n\
             \tda personal window\t-1\n\tdb personal window\t30\n\n\tdc personal window\t-1\n\n\nMonitor> "
        );
    }

    #[test]
    fn flow_control_dialog_with_the_accelerated_ring() {
        let c = conf("AcceleratedRing = true\n");
        let mut io = TestIo::new(b"200\n20\n15\n\n\n1\n2\n");
        let mut work = [[0i16; 2]; MAX_PROCS_RING];
        define_flow_control(&c, true, &mut work, &mut io).unwrap();
        assert_eq!(&work[..4], &[[20, 15], [-1, -1], [1, 2], [200, 0]]);
        assert!(io.output().contains("\tda personal window\t\tda accelerated window\t\tdb personal window\t"));
        let mut io = TestIo::new(b"");
        print_flow_control(&c, true, &work, &mut io);
        assert!(io.output().contains("\tda personal window\t20\n\tda accelerated window\t15\n"), "{}", io.output());
    }

    #[test]
    fn proc_picking() {
        let c = conf("");
        let mut io = TestIo::new(b"db\n  \nnobody\nall\nnone\ndc extra\n\n");
        let mut picks = Vec::new();
        pick_procs(&c, "\tEnter Proc Name: ", &mut io, &mut |p| picks.push(p)).unwrap();
        assert_eq!(picks, vec![Pick::One(1), Pick::All, Pick::None, Pick::One(2)]);
        assert_eq!(
            io.output(),
            "\tEnter Proc Name: \tEnter Proc Name: Please enter a legal proc name, none, or all\n\
             \tEnter Proc Name: Please! enter a legal proc name, none, or all\n\
             \tEnter Proc Name: \tEnter Proc Name: \tEnter Proc Name: \tEnter Proc Name: "
        );
    }
}
