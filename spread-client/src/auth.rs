//! The process-wide table of client authentication methods
//! (`SP_set_auth_method(s)`, client spec §1.5, §2.3 C3/C4).

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use spread_wire::consts::{MAX_AUTH_METHODS, MAX_AUTH_NAME};

/// The client side of one method: called with the connecting socket (still
/// non-blocking); returns `true` when authentication succeeded.
pub type AuthFn = Arc<dyn Fn(RawFd) -> bool + Send + Sync>;

/// A registered method.
#[derive(Clone)]
pub struct AuthMethod {
    /// The method name, at most 29 bytes, no NUL.
    pub name: Vec<u8>,
    pub authenticate: AuthFn,
}

impl std::fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMethod").field("name", &String::from_utf8_lossy(&self.name)).finish()
    }
}

fn null_method() -> AuthMethod {
    AuthMethod { name: b"NULL".to_vec(), authenticate: Arc::new(|_| true) }
}

static TABLE: Mutex<Option<Vec<AuthMethod>>> = Mutex::new(None);

/// The current table (default: the built-in `NULL` method).
pub fn methods() -> Vec<AuthMethod> {
    let g = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    g.clone().unwrap_or_else(|| vec![null_method()])
}

fn name_ok(n: &[u8]) -> bool {
    n.len() < MAX_AUTH_NAME && !n.contains(&0)
}

/// `SP_set_auth_method`: replace the table by one method. `false` (table
/// unchanged) when the name has 30 bytes or more.
pub fn set_method(m: AuthMethod) -> bool {
    crate::init();
    if !name_ok(&m.name) {
        return false;
    }
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(vec![m]);
    true
}

/// `SP_set_auth_methods`: replace the table atomically by 0–3 methods.
/// `false` (table unchanged) for more than 3 methods or a name too long.
pub fn set_methods(ms: Vec<AuthMethod>) -> bool {
    crate::init();
    if ms.len() > MAX_AUTH_METHODS || !ms.iter().all(|m| name_ok(&m.name)) {
        return false;
    }
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(ms);
    true
}

/// Back to the default table (tests).
pub fn reset() {
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Whether `name` is one of the daemon's allowed methods, tokenised the way
/// the original does: the list is a C string (cut at the first NUL), split
/// on single spaces, compared exactly (so an empty token exists after the
/// trailing space).
pub fn allowed(name: &[u8], list: &[u8]) -> bool {
    let list = &list[..list.iter().position(|&c| c == 0).unwrap_or(list.len())];
    list.split(|&c| c == b' ').any(|t| t == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenising() {
        assert!(allowed(b"NULL", b"NULL "));
        assert!(allowed(b"IP", b"NULL IP "));
        assert!(!allowed(b"NUL", b"NULL "));
        assert!(!allowed(b"PWORD", b"NULL IP "));
        assert!(allowed(b"", b"NULL "));
        assert!(!allowed(b"IP", b"NULL\0IP "));
    }
}
