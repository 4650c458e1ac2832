//! The `pam_sm_*` functions libpam calls: the only symbols the module exports.
//!
//! Each one turns libpam's arguments into safe values and runs the safe code under
//! `catch_unwind`: a panic becomes PAM_SYSTEM_ERR (a denied login) and never unwinds into
//! Dovecot's or saslauthd's C code.

use super::handle::Handle;
use libpam_sys as sys;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Copies `argv` into owned strings (non-UTF-8 arguments become invalid ones, refused later).
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings (libpam guarantees it).
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    if argv.is_null() {
        return Vec::new();
    }
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the caller guarantees argc valid pointers to C strings.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            arg.to_str()
                .map(str::to_string)
                .unwrap_or_else(|_| "\u{fffd}".to_string())
        })
        .collect()
}

/// Runs `body` with a safe handle and the arguments; a panic becomes PAM_SYSTEM_ERR.
///
/// # Safety
/// As for every `pam_sm_*` function: a live handle and `argc` valid argument strings.
unsafe fn guarded(
    pamh: *mut sys::pam_handle,
    argc: c_int,
    argv: *const *const c_char,
    body: fn(&Handle, &[String]) -> c_int,
) -> c_int {
    if pamh.is_null() {
        return sys::PAM_SYSTEM_ERR;
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from the caller.
        let (handle, args) = unsafe { (Handle::new(pamh), arguments(argc, argv)) };
        body(&handle, &args)
    }))
    .unwrap_or_else(|_| {
        // SAFETY: the handle is still the live one of this call (checked non-null above); the
        // log line uses nothing the panic may have left behind.
        let handle = unsafe { Handle::new(pamh) };
        crate::module::log_panic(&handle);
        sys::PAM_SYSTEM_ERR
    })
}

/// `auth` entry point: runs the phase named on the pam.d line.
///
/// # Safety
/// Called by libpam with a live handle and `argc` valid argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut sys::pam_handle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded from libpam.
    unsafe { guarded(pamh, argc, argv, crate::module::authenticate) }
}

/// `auth` credentials: mailmfa sets none.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut sys::pam_handle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    sys::PAM_IGNORE
}

/// `account` entry point (`account required pam_mailmfa.so account pwdfile=PATH`): an
/// app-password login only while its mailbox is alive in the password file.
///
/// # Safety
/// Called by libpam with a live handle and `argc` valid argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    pamh: *mut sys::pam_handle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded from libpam.
    unsafe { guarded(pamh, argc, argv, crate::module::account) }
}
