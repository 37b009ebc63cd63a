//! Project tasks.
//!
//! * `cargo run -p xtask -- headers` regenerates `include/*.h` from the
//!   templates in `xtask/templates/` and the Rust sources of `libspread-ffi`
//!   (through cbindgen, used as a library).
//! * `cargo run -p xtask -- headers --check` exits non-zero (with a diff) when
//!   the checked-in headers are not what the generator makes.

mod headers;

use std::path::PathBuf;
use std::process::ExitCode;

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

fn usage() -> ExitCode {
    eprintln!("usage: cargo run -p xtask -- headers [--check]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["headers"] => match headers::generate_all(&root) {
            Ok(out) => {
                for note in &out.notes {
                    eprintln!("note: {note}");
                }
                match headers::write_all(&root, &out) {
                    Ok(changed) => {
                        for f in &changed {
                            eprintln!("wrote include/{f}");
                        }
                        if changed.is_empty() {
                            eprintln!("headers already up to date");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        ["headers", "--check"] => match headers::generate_all(&root) {
            Ok(out) => {
                for note in &out.notes {
                    eprintln!("note: {note}");
                }
                let stale = headers::stale(&root, &out);
                if stale.is_empty() {
                    eprintln!("include/*.h are up to date");
                    ExitCode::SUCCESS
                } else {
                    for s in stale {
                        eprintln!("{s}");
                    }
                    eprintln!("run `cargo run -p xtask -- headers` to regenerate");
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => usage(),
    }
}
