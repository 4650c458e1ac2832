//! User names and uids from `/etc/passwd`, read as a file, without NSS: the library stays free
//! of unsafe code and of the name service's side effects. Used for the audit line's `by=` and
//! for the `record_owner` setting.

use std::path::Path;

/// The system's password file.
pub const PASSWD: &str = "/etc/passwd";

/// The (name, uid) pairs of a password file's text, in order; malformed lines are skipped.
fn entries(passwd: &str) -> impl Iterator<Item = (&str, u32)> {
    passwd.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        Some((name, fields.next()?.parse::<u32>().ok()?))
    })
}

/// The name of `uid` in the password file at `path`, `None` when it has none.
pub fn name_of_in(path: &Path, uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string(path).ok()?;
    let name = entries(&passwd)
        .find(|(_, u)| *u == uid)
        .map(|(name, _)| name.to_string());
    name
}

/// The uid of user `name` in the password file at `path`, `None` when there is no such user.
pub fn uid_of_in(path: &Path, name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string(path).ok()?;
    let uid = entries(&passwd).find(|(n, _)| *n == name).map(|(_, u)| u);
    uid
}

/// The name of `uid` in `/etc/passwd`.
pub fn name_of(uid: u32) -> Option<String> {
    name_of_in(Path::new(PASSWD), uid)
}

/// The uid of user `name` in `/etc/passwd`.
pub fn uid_of(name: &str) -> Option<u32> {
    uid_of_in(Path::new(PASSWD), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uids_come_from_the_file() {
        let dir = std::env::temp_dir().join(format!("mailmfa-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passwd");
        std::fs::write(
            &path,
            "root:x:0:0:root:/root:/bin/sh\nbroken\nmailmfa:x:998:998::/:/usr/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(uid_of_in(&path, "mailmfa"), Some(998));
        assert_eq!(uid_of_in(&path, "nobody"), None);
        assert_eq!(name_of_in(&path, 0).as_deref(), Some("root"));
        assert_eq!(name_of_in(&path, 5), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
