//! The libc calls outside PAM that the safe code needs: who we run as, and syslog for the
//! command (the module logs through `pam_syslog` instead).

use std::ffi::CString;

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends one line to syslog, facility authpriv, with `ident` and the pid. Never opens the
/// console (no LOG_CONS): without a syslog daemon the line is dropped, not written to a
/// 9600-baud console.
pub fn syslog_authpriv(ident: &str, priority: libc::c_int, line: &str) {
    let ident = CString::new(ident.replace('\0', "?")).expect("NULs were replaced");
    let line = CString::new(line.replace('\0', "?")).expect("NULs were replaced");
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the calls; the
    // format is a fixed "%s". closelog() is called before `ident` is freed, as openlog keeps
    // the pointer.
    unsafe {
        libc::openlog(ident.as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV);
        libc::syslog(priority, c"%s".as_ptr(), line.as_ptr());
        libc::closelog();
    }
}
