//! Moving every record from one store to another (`mailmfa db import`, `mailmfa db export`):
//! files to SQL and SQL to files are the same walk over two [`Store`]s. Each record is read,
//! written, read back from the target and compared; nothing is removed from the source, so
//! an interrupted move is simply run again.

use super::{Store, StoreError};
use crate::login::Login;

/// What a move did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Records read from the source.
    pub read: usize,
    /// Records written to the target and read back equal.
    pub written: usize,
    /// Records the target already held, equal.
    pub same: usize,
    /// Logins whose record the target holds differently (not written without `replace`).
    pub conflicts: Vec<Login>,
}

/// Copies every record of `from` to `to`; a record the target holds differently is replaced
/// only when `replace` is set, else named in [`Transfer::conflicts`]. Stops at the first
/// error, or at a record that does not read back equal (a [`StoreError::Write`] naming it).
pub fn copy_records(
    from: &dyn Store,
    to: &dyn Store,
    replace: bool,
) -> Result<Transfer, StoreError> {
    let mut done = Transfer::default();
    for login in from.list_logins()? {
        let Some(record) = from.read_record(&login)? else {
            // Removed since the listing: nothing to move.
            continue;
        };
        done.read += 1;
        match to.read_record(&login)? {
            Some(there) if there == record => {
                done.same += 1;
                continue;
            }
            Some(_) if !replace => {
                done.conflicts.push(login);
                continue;
            }
            _ => {}
        }
        to.write_record(&login, &record)?;
        if to.read_record(&login)?.as_ref() != Some(&record) {
            return Err(StoreError::Write {
                path: login.as_str().into(),
                why: "the record written does not read back equal".to_string(),
            });
        }
        done.written += 1;
    }
    Ok(done)
}
