//! Running as root: the Unix-socket directory check and the privilege drop
//! (`chdir` + `chroot` to `RuntimeDir`, then `setgroups`/`setgid`/`setuid` to
//! `DaemonGroup`/`DaemonUser`), in the original's order: the directory check
//! before the client listeners are bound, the drop right after.
//!
//! Strictness: when `DaemonUser`, `DaemonGroup` or `RuntimeDir` is written in
//! the configuration, any failure of the drop ends the daemon, as in 5.0.1.
//! When none of them is written (defaults `spread`/`spread`,
//! `/var/run/spread`) and the drop cannot be done — typically because this
//! machine has no `spread` user — the daemon logs a warning and keeps
//! running as root, so that a first `make run` as root works.
//!
//! After the drop the Unix socket `/tmp/<port>` is outside the new root. So
//! that the daemon can still remove it at exit, [`SocketCleanup`] keeps a
//! descriptor of its directory from before the `chroot`, and the socket is
//! handed to the new user (in a sticky `/tmp` only the owner may unlink it).

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config::Config;

/// Is the effective user root?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The check of the Unix-socket directory made when running as root.
/// `Err` is fatal (the directory cannot be examined); `Ok(Some(w))` is a
/// warning to log (the directory is writable by others or not root's).
pub fn check_socket_dir(dir: &str) -> Result<Option<String>, String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir).map_err(|_| {
        format!(
            "Spread unable to stat the unix domain socket dir ({dir}). Please verify the selected directory and restart the daemon"
        )
    })?;
    if m.mode() & libc::S_IWOTH != 0 || m.uid() != 0 {
        return Ok(Some(format!(
            "Spread: SECURITY RISK! running as root, but unix domain socket is not in a root-only writable directory. \
             May risk denial of service or malicious deletion of unexpected file in directory: {dir}"
        )));
    }
    Ok(None)
}

/// The uid of `DaemonUser` and the gid of `DaemonGroup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// `getpwnam_r`: the uid of `name`.
pub fn lookup_user(name: &str) -> Option<libc::uid_t> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let r = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
    (r == 0 && !res.is_null()).then_some(pw.pw_uid)
}

/// `getgrnam_r`: the gid of `name`.
pub fn lookup_group(name: &str) -> Option<libc::gid_t> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: an all-zero group is a valid out-parameter.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let r = unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
    (r == 0 && !res.is_null()).then_some(gr.gr_gid)
}

/// What [`drop_privileges`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not root: nothing to do (the original warns it won't chroot).
    NotRoot,
    /// Chrooted to the runtime directory and running as these ids.
    Dropped(Ids),
    /// Defaults only and the drop was not possible: still root, with why.
    KeptRoot(String),
}

/// The fatal message for a failed user/group change.
pub fn privilege_failure(conf: &Config) -> String {
    format!(
        "Spread: FAILED privilege drop to user/group '{}/{}' (defined in spread.conf or spread_params.h)",
        conf.daemon_user, conf.daemon_group
    )
}

/// Whether the configuration asks for the drop explicitly (then failures are fatal).
pub fn strict(conf: &Config) -> bool {
    conf.daemon_user_set || conf.daemon_group_set || conf.runtime_dir_set
}

/// Drop root privileges as configured; run `before_chroot(ids)` once the ids
/// are known and before anything changes (to hand files over to the new user).
/// `Err` is a fatal message.
pub fn drop_privileges(conf: &Config, before_chroot: impl FnOnce(Ids)) -> Result<Outcome, String> {
    if !is_root() {
        return Ok(Outcome::NotRoot);
    }
    let strict = strict(conf);
    let soft = |msg: String| if strict { Err(msg) } else { Ok(Outcome::KeptRoot(msg)) };
    let (Some(gid), Some(uid)) = (lookup_group(&conf.daemon_group), lookup_user(&conf.daemon_user)) else {
        return soft(privilege_failure(conf));
    };
    let ids = Ids { uid, gid };
    let Ok(dir) = CString::new(Path::new(&conf.runtime_dir).as_os_str().as_bytes()) else {
        return soft(format!("Spread: FAILED chroot to '{}'", conf.runtime_dir));
    };
    before_chroot(ids);
    // Local time keeps working inside the new root: load the zone now.
    // SAFETY: tzset has no preconditions.
    unsafe { tzset() };
    // SAFETY: dir is NUL-terminated.
    if unsafe { libc::chdir(dir.as_ptr()) } < 0 || unsafe { libc::chroot(dir.as_ptr()) } < 0 {
        return soft(format!("Spread: FAILED chroot to '{}'", conf.runtime_dir));
    }
    // SAFETY: plain system calls with valid arguments.
    let ok = unsafe { libc::setgroups(1, &gid) == 0 && libc::setgid(gid) == 0 && libc::setuid(uid) == 0 };
    if !ok {
        // Chrooted but still root: the original stops here whatever the configuration.
        return Err(privilege_failure(conf));
    }
    Ok(Outcome::Dropped(ids))
}

extern "C" {
    fn tzset();
}

/// Removes the Unix socket at exit even from inside the new root: holds a
/// descriptor of the socket's directory opened before the `chroot`.
pub struct SocketCleanup {
    dir_fd: i32,
    name: CString,
}

impl SocketCleanup {
    /// Prepare removal of `path` (call before the chroot).
    pub fn new(path: &Path) -> Option<SocketCleanup> {
        let dir = path.parent()?;
        let name = CString::new(path.file_name()?.as_bytes()).ok()?;
        let d = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: d is NUL-terminated.
        let fd = unsafe { libc::open(d.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        (fd >= 0).then_some(SocketCleanup { dir_fd: fd, name })
    }

    /// Give the socket file to the new owner so it may unlink it later.
    pub fn chown(&self, ids: Ids) {
        // SAFETY: valid descriptor and NUL-terminated name.
        unsafe { libc::fchownat(self.dir_fd, self.name.as_ptr(), ids.uid, ids.gid, libc::AT_SYMLINK_NOFOLLOW) };
    }

    /// Unlink the socket (harmless if already gone).
    pub fn remove(&self) {
        // SAFETY: valid descriptor and NUL-terminated name.
        unsafe { libc::unlinkat(self.dir_fd, self.name.as_ptr(), 0) };
    }

    pub fn name(&self) -> &CStr {
        &self.name
    }
}

impl Drop for SocketCleanup {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this value owns.
        unsafe { libc::close(self.dir_fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(lookup_user("root"), Some(0));
        assert_eq!(lookup_group("root"), Some(0));
        assert_eq!(lookup_user("no-such-user-rspread"), None);
        assert_eq!(lookup_group("no-such-group-rspread"), None);
        assert_eq!(lookup_user("a\0b"), None);
    }

    #[test]
    fn socket_dir_check() {
        // /tmp is world-writable: a warning, not an error.
        let w = check_socket_dir("/tmp").unwrap().unwrap();
        assert!(w.ends_with("directory: /tmp"), "{w}");
        assert!(check_socket_dir("/nonexistent-rspread-dir").unwrap_err().contains("(/nonexistent-rspread-dir)"));
        if is_root() {
            assert_eq!(check_socket_dir("/").unwrap(), None);
        }
    }

    #[test]
    fn strictness() {
        let base = "Spread_Segment 127.0.0.255:27210 {\n\th 127.0.0.1\n}\n";
        let c = crate::config::parse_str(base, "t").unwrap();
        assert!(!strict(&c));
        for extra in ["DaemonUser = nobody\n", "DaemonGroup = nogroup\n", "RuntimeDir = /tmp\n"] {
            let c = crate::config::parse_str(&format!("{base}{extra}"), "t").unwrap();
            assert!(strict(&c), "{extra}");
        }
        let c = crate::config::parse_str(&format!("{base}DaemonUser = spread\n"), "t").unwrap();
        assert!(strict(&c), "explicit even when equal to the default");
        assert_eq!(
            privilege_failure(&c),
            "Spread: FAILED privilege drop to user/group 'spread/spread' (defined in spread.conf or spread_params.h)"
        );
    }

    #[test]
    fn cleanup_removes_by_directory_descriptor() {
        let dir = std::env::temp_dir().join(format!("rspread-h10-clean-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("27211");
        std::fs::write(&f, "").unwrap();
        let c = SocketCleanup::new(&f).unwrap();
        assert_eq!(c.name().to_bytes(), b"27211");
        c.remove();
        assert!(!f.exists());
        c.remove();
        drop(c);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
