//! The application side of PAM: one login the way Dovecot does it.
//!
//! `pam_start_confdir` (or `pam_start` for the machine's /etc/pam.d), PAM_RHOST,
//! `pam_authenticate` with a conversation that answers hidden prompts with the password and
//! visible ones with the user name, `pam_acct_mgmt` after success, `pam_end`. Used by
//! `mailmfa check`, the libpam tests and the benchmark.
//!
//! The client installs a `PAM_FAIL_DELAY` function, so libpam reports the failure delay the
//! modules asked for (pam_unix and pam_pwdfile without `nodelay` ask for 2 s) in
//! [`Response::fail_delay`] instead of sleeping it; a caller that wants the delay sleeps it
//! itself. Dovecot applies its own `auth_failure_delay` the same way.

use libpam_sys as sys;
use std::ffi::{c_int, c_void, CStr, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use zeroize::Zeroizing;

/// One login to run.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// PAM service name (the pam.d file).
    pub service: &'a str,
    /// User name as the client sent it.
    pub user: &'a [u8],
    /// What the client sent as password (password + code).
    pub password: &'a [u8],
    /// Directory of service files; `None`: the machine's /etc/pam.d.
    pub confdir: Option<&'a Path>,
    /// PAM_RHOST, the client's address.
    pub rhost: Option<&'a str>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `pam_authenticate`'s return code.
    pub authenticate: c_int,
    /// `pam_acct_mgmt`'s return code, when authentication succeeded.
    pub account: Option<c_int>,
    /// The last reason mailmfa published (`MAILMFA_REASON` in the PAM environment).
    pub reason: Option<String>,
    /// Text and error messages the stack sent through the conversation.
    pub messages: Vec<String>,
    /// The failure delay libpam computed from what the modules asked for (`pam_fail_delay`,
    /// randomised by libpam), reported after `pam_authenticate`; zero when none asked.
    pub fail_delay: std::time::Duration,
}

impl Response {
    /// Whether the login got in (authentication and account both succeeded).
    pub fn success(&self) -> bool {
        self.authenticate == sys::PAM_SUCCESS && self.account == Some(sys::PAM_SUCCESS)
    }
}

/// A login that could not be started.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientError(pub String);

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClientError {}

/// libpam's text for a return code.
pub fn strerror(code: c_int) -> String {
    // SAFETY: pam_strerror accepts a null handle and returns a static string.
    let text = unsafe { sys::pam_strerror(std::ptr::null(), code) };
    if text.is_null() {
        return format!("PAM error {code}");
    }
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

struct Conversation {
    user: CString,
    password: Zeroizing<Vec<u8>>,
    messages: Vec<String>,
    fail_delay_us: u32,
}

/// libpam's `PAM_FAIL_DELAY` callback: notes the delay instead of sleeping.
unsafe extern "C" fn note_fail_delay(_status: c_int, usec: libc::c_uint, appdata: *mut c_void) {
    if !appdata.is_null() {
        // SAFETY: libpam passes the conversation's appdata, the Conversation that `login`
        // keeps alive until after pam_end.
        unsafe { (*appdata.cast::<Conversation>()).fail_delay_us = usec };
    }
}

/// Duplicates `bytes` (no NUL inside) into a malloc'ed C string that libpam will free.
fn malloc_cstring(bytes: &[u8]) -> *mut libc::c_char {
    // SAFETY: malloc of len+1 bytes, filled with `bytes` and a NUL; null is checked.
    unsafe {
        let p = libc::malloc(bytes.len() + 1).cast::<u8>();
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            *p.add(bytes.len()) = 0;
        }
        p.cast()
    }
}

unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *const *const sys::pam_message,
    resp: *mut *mut sys::pam_response,
    appdata: *mut c_void,
) -> c_int {
    let Ok(n) = usize::try_from(num_msg) else {
        return sys::PAM_CONV_ERR;
    };
    if n == 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return sys::PAM_CONV_ERR;
    }
    // SAFETY: `appdata` is the Conversation that `login` passed and keeps alive.
    let conv = unsafe { &mut *appdata.cast::<Conversation>() };
    // SAFETY: calloc'ed array of n responses; libpam frees it and the strings in it.
    let replies = unsafe { libc::calloc(n, std::mem::size_of::<sys::pam_response>()) }
        .cast::<sys::pam_response>();
    if replies.is_null() {
        return sys::PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of n message pointers.
        let m = unsafe { &**msg.add(i) };
        let text = if m.msg.is_null() {
            String::new()
        } else {
            // SAFETY: message text is a NUL-terminated string.
            unsafe { CStr::from_ptr(m.msg) }
                .to_string_lossy()
                .into_owned()
        };
        let answer = match m.msg_style {
            sys::PAM_PROMPT_ECHO_OFF => malloc_cstring(&conv.password),
            sys::PAM_PROMPT_ECHO_ON => malloc_cstring(conv.user.as_bytes()),
            _ => {
                conv.messages.push(text);
                std::ptr::null_mut()
            }
        };
        // SAFETY: i < n, inside the calloc'ed array.
        unsafe { (*replies.add(i)).resp = answer };
    }
    // SAFETY: `resp` is a valid out-pointer.
    unsafe { *resp = replies };
    sys::PAM_SUCCESS
}

/// Runs one login through the PAM stack of `request.service`.
pub fn login(request: &Request<'_>) -> Result<Response, ClientError> {
    let service =
        CString::new(request.service).map_err(|_| ClientError("service name holds NUL".into()))?;
    let user = CString::new(request.user).map_err(|_| ClientError("user name holds NUL".into()))?;
    if request.password.contains(&0) {
        return Err(ClientError(
            "a password cannot hold NUL (a C string ends there)".into(),
        ));
    }
    let confdir = request
        .confdir
        .map(|d| CString::new(d.as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| ClientError("confdir holds NUL".into()))?;
    let rhost = request
        .rhost
        .map(CString::new)
        .transpose()
        .map_err(|_| ClientError("rhost holds NUL".into()))?;
    let mut conversation = Box::new(Conversation {
        user: user.clone(),
        password: Zeroizing::new(request.password.to_vec()),
        messages: Vec::new(),
        fail_delay_us: 0,
    });
    let mut conv = sys::pam_conv {
        conv: converse,
        appdata_ptr: (&mut *conversation as *mut Conversation).cast(),
    };
    let mut pamh: *mut sys::pam_handle = std::ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction; `conv` and the
    // Conversation it points to live until after pam_end below.
    let rc = unsafe {
        match &confdir {
            Some(dir) => sys::pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &mut conv,
                dir.as_ptr(),
                &mut pamh,
            ),
            None => sys::pam_start(service.as_ptr(), user.as_ptr(), &mut conv, &mut pamh),
        }
    };
    if rc != sys::PAM_SUCCESS || pamh.is_null() {
        return Err(ClientError(format!("pam_start failed: {}", strerror(rc))));
    }
    // SAFETY: pamh is live until pam_end; items are copied by libpam; Linux-PAM's pam_getenv
    // returns a pointer into the handle's environment, copied before pam_end.
    let response = unsafe {
        if let Some(rhost) = &rhost {
            sys::pam_set_item(pamh, sys::PAM_RHOST, rhost.as_ptr().cast());
        }
        sys::pam_set_item(pamh, sys::PAM_RUSER, user.as_ptr().cast());
        let delay_fn: unsafe extern "C" fn(c_int, libc::c_uint, *mut c_void) = note_fail_delay;
        sys::pam_set_item(pamh, sys::PAM_FAIL_DELAY, delay_fn as *const c_void);
        let authenticate = sys::pam_authenticate(pamh, 0);
        let account = (authenticate == sys::PAM_SUCCESS).then(|| sys::pam_acct_mgmt(pamh, 0));
        let env = sys::pam_getenv(pamh, c"MAILMFA_REASON".as_ptr());
        let reason = (!env.is_null()).then(|| CStr::from_ptr(env).to_string_lossy().into_owned());
        let status = account.unwrap_or(authenticate);
        sys::pam_end(pamh, status);
        Response {
            authenticate,
            account,
            reason,
            messages: std::mem::take(&mut conversation.messages),
            fail_delay: std::time::Duration::from_micros(conversation.fail_delay_us.into()),
        }
    };
    Ok(response)
}
