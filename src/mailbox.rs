//! The account rule: is a mailbox still alive in its password file?
//!
//! An accepted app password ends the `auth` stack in `split`, so the password module never
//! looks at the mailbox. The `account` phase (`account required pam_mailmfa.so account
//! pwdfile=PATH`) asks the password file instead, in the format pam_pwdfile reads
//! (`user:hash[:...]`, one mailbox a line): a mailbox whose line is gone, or whose hash is
//! empty or starts with `!` or `*` (the usual way to lock an entry without losing it), is
//! refused. The user name is compared byte for byte, as pam_pwdfile compares it.
//!
//! Stacks whose password module has its own account check (pam_unix, pam_ldap, pam_mysql)
//! use that instead; see `docs/deployment.md`.

use std::io::{self, BufRead};

/// What the password file says about a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mailbox {
    /// A line with a usable hash.
    Alive,
    /// A line whose hash is empty or starts with `!` or `*`.
    Locked,
    /// No line for this user.
    Gone,
}

/// Looks `user` up in a pam_pwdfile-format file read from `file`. The first line for the user
/// decides (pam_pwdfile uses the first, too); lines starting with `#` are comments.
pub fn lookup(file: impl BufRead, user: &[u8]) -> io::Result<Mailbox> {
    let mut file = file;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if file.read_until(b'\n', &mut line)? == 0 {
            return Ok(Mailbox::Gone);
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.starts_with(b"#") {
            continue;
        }
        let mut fields = text.splitn(3, |&b| b == b':');
        if fields.next() != Some(user) {
            continue;
        }
        let hash = fields.next().unwrap_or_default();
        let locked = hash.is_empty() || hash.starts_with(b"!") || hash.starts_with(b"*");
        return Ok(if locked {
            Mailbox::Locked
        } else {
            Mailbox::Alive
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &[u8] = b"# mailboxes\n\
        alice@example.com:$6$salt$hash\n\
        bob@example.com:!$6$salt$hash\n\
        carol@example.com:*\n\
        dave@example.com:\n\
        erin@example.com:$6$x$y:extra:fields\r\n\
        alice@example.com:!second-line-is-ignored\n";

    fn look(user: &str) -> Mailbox {
        lookup(FILE, user.as_bytes()).unwrap()
    }

    #[test]
    fn a_line_with_a_hash_is_alive() {
        assert_eq!(look("alice@example.com"), Mailbox::Alive);
        assert_eq!(look("erin@example.com"), Mailbox::Alive);
    }

    #[test]
    fn a_locked_or_empty_hash_is_locked() {
        assert_eq!(look("bob@example.com"), Mailbox::Locked);
        assert_eq!(look("carol@example.com"), Mailbox::Locked);
        assert_eq!(look("dave@example.com"), Mailbox::Locked);
    }

    #[test]
    fn names_match_exactly_or_not_at_all() {
        for user in [
            "zoe@example.com",
            "Alice@example.com",
            "alice@example.co",
            "alice",
            "",
            "# mailboxes",
        ] {
            assert_eq!(look(user), Mailbox::Gone, "{user:?}");
        }
    }
}
