//! Where the recordings of the original 5.0.1 are: `../shared/ref` beside the
//! checkout, the only place they come from.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/ref` beside the checkout; panics saying so when it is missing.
pub fn ref_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ref");
    if !dir.is_dir() {
        panic!(
            "the recordings of the original 5.0.1 are missing: expected ../shared/ref beside the checkout ({}); \
             they come only from there",
            dir.display()
        );
    }
    dir
}

/// A file under [`ref_dir`] as text; panics naming it when it cannot be read.
pub fn read_ref(rel: &str) -> String {
    let p = ref_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read the recording {} ({e})", p.display()))
}
