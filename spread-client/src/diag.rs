//! The library's user-visible diagnostics. The original prints them with
//! `fwrite` on C's `stdout` (no timestamp, no flush); so do we, so that they
//! interleave with the application's own `printf` output exactly as before.
//! Tests can divert them with [`set_sink`].

use std::sync::Mutex;

type Sink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Divert diagnostics to `sink` (or back to C's stdout with `None`).
pub fn set_sink(sink: Option<Sink>) {
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = sink;
}

extern "C" {
    #[link_name = "stdout"]
    static mut C_STDOUT: *mut libc::FILE;
}

/// Print `msg` the way the original's `Alarm(PRINT, ...)` does.
pub fn print(msg: &str) {
    {
        let g = SINK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.as_ref() {
            s(msg);
            return;
        }
    }
    // SAFETY: `stdout` is the C library's stream pointer, initialised before
    // main; fwrite is given a valid buffer and its exact length.
    unsafe {
        let out = std::ptr::addr_of!(C_STDOUT).read();
        if !out.is_null() {
            libc::fwrite(msg.as_ptr() as *const libc::c_void, 1, msg.len(), out);
        }
    }
}
