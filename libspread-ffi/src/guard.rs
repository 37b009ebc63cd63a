//! The panic boundary: every `extern "C"` function body runs inside [`guard`],
//! which turns a panic into the function's error value. No panic crosses into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`; if it panics, return `on_panic` instead.
#[inline]
pub fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// [`guard`] for functions returning nothing.
#[inline]
pub fn guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}
