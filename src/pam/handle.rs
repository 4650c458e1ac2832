//! A safe view of the `pam_handle` a module is called with.
//!
//! Each method wraps one libpam call and copies what it returns, so no pointer owned by libpam
//! escapes. The password comes back in a [`Zeroizing`] buffer.

use libpam_sys as sys;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use zeroize::Zeroizing;

/// The module's handle for the duration of one `pam_sm_*` call.
pub struct Handle {
    raw: *mut sys::pam_handle,
}

/// A PAM error code returned by libpam.
pub type PamCode = c_int;

const KEPT_NAME: &CStr = c"mailmfa:kept";

impl Handle {
    /// Wraps the handle libpam passed to a `pam_sm_*` function.
    ///
    /// # Safety
    /// `raw` must be the live handle of the current call and must not be used after it returns.
    pub(super) unsafe fn new(raw: *mut sys::pam_handle) -> Handle {
        Handle { raw }
    }

    /// The user name (`pam_get_user`), as raw bytes.
    pub fn user(&self) -> Result<Vec<u8>, PamCode> {
        let mut user: *const c_char = std::ptr::null();
        // SAFETY: valid handle; libpam stores a pointer it owns into `user`.
        let rc = unsafe { sys::pam_get_user(self.raw, &mut user, std::ptr::null()) };
        if rc != sys::PAM_SUCCESS || user.is_null() {
            return Err(if rc == sys::PAM_SUCCESS {
                sys::PAM_SYSTEM_ERR
            } else {
                rc
            });
        }
        // SAFETY: libpam returned a NUL-terminated string that lives until the next call.
        Ok(unsafe { CStr::from_ptr(user) }.to_bytes().to_vec())
    }

    /// The password: PAM_AUTHTOK if an earlier module set it, else asked through the
    /// conversation with a hidden prompt (`pam_get_authtok`).
    pub fn authtok(&self) -> Result<Zeroizing<Vec<u8>>, PamCode> {
        let mut tok: *const c_char = std::ptr::null();
        // SAFETY: valid handle; libpam stores a pointer it owns into `tok`.
        let rc =
            unsafe { sys::pam_get_authtok(self.raw, sys::PAM_AUTHTOK, &mut tok, std::ptr::null()) };
        if rc != sys::PAM_SUCCESS || tok.is_null() {
            return Err(if rc == sys::PAM_SUCCESS {
                sys::PAM_AUTHTOK_ERR
            } else {
                rc
            });
        }
        // SAFETY: libpam returned a NUL-terminated string that lives until the item changes.
        Ok(Zeroizing::new(
            unsafe { CStr::from_ptr(tok) }.to_bytes().to_vec(),
        ))
    }

    /// Replaces PAM_AUTHTOK with `password` (libpam copies it; our copy is zeroed).
    pub fn set_authtok(&self, password: &[u8]) -> Result<(), PamCode> {
        let mut buf = Zeroizing::new(Vec::with_capacity(password.len() + 1));
        buf.extend_from_slice(password);
        if buf.contains(&0) {
            return Err(sys::PAM_AUTHTOK_ERR);
        }
        buf.push(0);
        // SAFETY: `buf` is NUL-terminated and outlives the call; libpam copies the string.
        let rc = unsafe { sys::pam_set_item(self.raw, sys::PAM_AUTHTOK, buf.as_ptr().cast()) };
        if rc == sys::PAM_SUCCESS {
            Ok(())
        } else {
            Err(rc)
        }
    }

    /// A string item (PAM_SERVICE, PAM_RHOST...), "" when unset. Non-UTF-8 bytes are replaced.
    pub fn item(&self, item: c_int) -> String {
        let mut value: *const c_void = std::ptr::null();
        // SAFETY: valid handle; string items are NUL-terminated strings owned by libpam.
        let rc = unsafe { sys::pam_get_item(self.raw, item, &mut value) };
        if rc != sys::PAM_SUCCESS || value.is_null() {
            return String::new();
        }
        // SAFETY: see above.
        unsafe { CStr::from_ptr(value.cast()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Keeps `value` in the handle until `pam_end` (`pam_set_data`), replacing what was kept.
    pub fn keep<T: 'static>(&self, value: T) -> Result<(), PamCode> {
        unsafe extern "C" fn cleanup<T>(_: *mut sys::pam_handle, data: *mut c_void, _: c_int) {
            // SAFETY: `data` is the Box<T> leaked by `keep::<T>` below, freed exactly once here.
            drop(unsafe { Box::from_raw(data.cast::<T>()) });
        }
        let data = Box::into_raw(Box::new(Kept {
            type_id: std::any::TypeId::of::<T>(),
            value,
        }));
        // SAFETY: valid handle and name; libpam owns `data` from now on and frees it with the
        // matching cleanup (which drops the Kept<T> it was made from).
        let rc = unsafe {
            sys::pam_set_data(
                self.raw,
                KEPT_NAME.as_ptr(),
                data.cast(),
                cleanup::<Kept<T>>,
            )
        };
        if rc != sys::PAM_SUCCESS {
            // SAFETY: libpam did not take `data`.
            drop(unsafe { Box::from_raw(data) });
            return Err(rc);
        }
        Ok(())
    }

    /// What [`Handle::keep`] kept in this transaction, if it was a `T`.
    pub fn kept<T: 'static>(&self) -> Option<&T> {
        let mut data: *const c_void = std::ptr::null();
        // SAFETY: valid handle and name.
        let rc = unsafe { sys::pam_get_data(self.raw, KEPT_NAME.as_ptr(), &mut data) };
        if rc != sys::PAM_SUCCESS || data.is_null() {
            return None;
        }
        // Every value kept under KEPT_NAME is a Kept<U> whose first field is the TypeId of U
        // (repr(C)), so reading the header is sound whatever U is.
        // SAFETY: see above; the data lives until pam_end, longer than `&self`.
        let header = unsafe { &*data.cast::<KeptHeader>() };
        if header.type_id != std::any::TypeId::of::<T>() {
            return None;
        }
        // SAFETY: the TypeId matched, so the data is a Kept<T>.
        Some(&unsafe { &*data.cast::<Kept<T>>() }.value)
    }

    /// Writes one line to syslog (authpriv) through `pam_syslog`.
    pub fn log(&self, priority: c_int, line: &str) {
        let line = CString::new(line.replace('\0', "?")).expect("NULs were replaced");
        // SAFETY: valid handle; fixed "%s" format with a NUL-terminated argument.
        unsafe { sys::pam_syslog(self.raw, priority, c"%s".as_ptr(), line.as_ptr()) };
    }

    /// Sets a PAM environment variable (`pam_putenv`); the application can read it with
    /// `pam_getenv` (how `mailmfa check` learns the module's reason).
    pub fn putenv(&self, name_value: &str) {
        if let Ok(s) = CString::new(name_value) {
            // SAFETY: valid handle and NUL-terminated string; libpam copies it.
            unsafe { sys::pam_putenv(self.raw, s.as_ptr()) };
        }
    }
}

#[repr(C)]
struct Kept<T> {
    type_id: std::any::TypeId,
    value: T,
}

#[repr(C)]
struct KeptHeader {
    type_id: std::any::TypeId,
}
