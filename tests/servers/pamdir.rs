// A test's own pam.d directory (bind-mounted over /etc/pam.d inside the servers' namespace)
// and the pam_pwdfile password files its stacks check passwords against.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::TestDir;

/// The `other` service written into every PamDir: deny everything, so a misspelt service name
/// fails loudly instead of falling back to something permissive.
const OTHER_DENY: &str = "\
auth     required pam_deny.so
account  required pam_deny.so
password required pam_deny.so
session  required pam_deny.so
";

/// A temp dir of PAM service files. It starts with an `other` file that denies everything.
pub struct PamDir {
    dir: TestDir,
}

impl PamDir {
    /// An empty pam.d dir (apart from `other`).
    pub fn new() -> PamDir {
        let dir = TestDir::new("pam.d");
        dir.write("other", OTHER_DENY);
        PamDir { dir }
    }

    /// The dir to hand to `Dovecot::start` / `Saslauthd::start`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or replaces) service file `service`. Running servers see it at the next login.
    pub fn write(&self, service: &str, stack: &str) -> &PamDir {
        self.dir.write(service, stack);
        self
    }

    /// Writes a pam_pwdfile password file named `name` into this dir (pick a name no service
    /// uses: it sits next to them), one `user:$6$...` line per (user, password) (hashed with
    /// `openssl passwd -6`), and returns its path for `pam_pwdfile.so pwdfile=PATH`.
    pub fn write_pwdfile(&self, name: &str, users: &[(&str, &str)]) -> PathBuf {
        let mut text = String::new();
        for (user, password) in users {
            text.push_str(&format!("{user}:{}\n", sha512_crypt(password)));
        }
        self.dir.write(name, &text)
    }
}

impl Default for PamDir {
    fn default() -> Self {
        PamDir::new()
    }
}

/// `openssl passwd -6` of `password` (read from stdin, so any bytes but newline work).
pub fn sha512_crypt(password: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    assert!(!password.contains('\n'), "password with a newline");
    let mut child = Command::new(super::program("openssl"))
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .expect("write to openssl");
    let out = child.wait_with_output().expect("wait for openssl");
    assert!(
        out.status.success(),
        "openssl passwd -6 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("openssl output is UTF-8")
        .trim()
        .to_string()
}
