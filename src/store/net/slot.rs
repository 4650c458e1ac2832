//! One connection per process to a shared backend, reused across logins.
//!
//! Dovecot's auth workers and saslauthd serve many logins per process and keep the module
//! mapped, so each backend keeps its connection in a process-wide [`Slot`]: opened on first
//! use, reused while it works, dropped after any error (the next use opens a new one: nothing
//! for the admin to do when the server comes back), and never used by a child after `fork`
//! (the slot remembers the pid; a child opens its own).

use crate::store::secure::Owners;
use std::sync::Mutex;

/// A connection a [`Slot`] can hold.
pub trait Reusable {
    /// Whether the last failure was the server closing or resetting the connection (it
    /// restarted, or dropped an idle client): worth one retry on a new connection.
    fn went_stale(&self) -> bool;

    /// Marks a copy inherited across `fork` (the parent's connection, in the child): dropping
    /// it must close the socket without a word to the server, which would end the parent's
    /// session. Nothing to do for a connection that says nothing when dropped.
    fn abandon(&mut self) {}
}

/// The process's connection and what it was opened for.
pub struct Slot<S, C> {
    pid: u32,
    settings: S,
    owners: Owners,
    conn: C,
}

/// A backend's process-wide slot (a `static`).
pub type Shared<S, C> = Mutex<Option<Slot<S, C>>>;

/// Runs `work` on this process's connection in `slot` for `settings`, opening one with `open`
/// if there is none (or it belongs to the parent of a fork, or to other settings). A failure
/// drops the connection; a reused one that went stale is replaced once and `work` runs again
/// (it must be a complete, repeatable unit). `work` must not call back into the same backend:
/// the slot is held while it runs.
pub fn with_connection<S, C, T, E>(
    slot: &Shared<S, C>,
    settings: &S,
    owners: Owners,
    open: &dyn Fn(&S, Owners) -> Result<C, E>,
    work: &mut dyn FnMut(&mut C) -> Result<T, E>,
) -> Result<T, E>
where
    S: PartialEq + Clone,
    C: Reusable,
{
    let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pid = std::process::id();
    let reusable = slot
        .as_ref()
        .is_some_and(|s| s.pid == pid && s.settings == *settings && s.owners == owners);
    if !reusable {
        // Another settings' connection (closed as usual), or the parent's after a fork:
        // closing our copy of the descriptor leaves the parent's connection intact, as long
        // as nothing is written on it.
        if let Some(mut old) = slot.take() {
            if old.pid != pid {
                old.conn.abandon();
            }
        }
    }
    let mut fresh = !reusable;
    loop {
        let mut current = match slot.take() {
            Some(current) => current,
            None => Slot {
                pid,
                settings: settings.clone(),
                owners,
                conn: open(settings, owners)?,
            },
        };
        match work(&mut current.conn) {
            Ok(value) => {
                *slot = Some(current);
                return Ok(value);
            }
            Err(_) if !fresh && current.conn.went_stale() => fresh = true,
            Err(failure) => return Err(failure),
        }
    }
}
