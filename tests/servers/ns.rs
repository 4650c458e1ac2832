// The private mount namespace the harness runs PAM-using daemons in: the test's pam.d dir over
// /etc/pam.d and a /dev whose `log` points at the test's syslog socket. Nothing outside the
// daemon's process tree sees these mounts; they vanish with it.

use std::path::Path;
use std::process::Command;

/// The wrapper run by `unshare -m`: $1 = pam.d dir, $2 = syslog socket, $3 = an empty scratch
/// dir (the old /dev is reached through it while the new one is built), then the command.
/// /dev becomes a tmpfs holding bind mounts of the usual character devices, /dev/pts and
/// /dev/shm, the fd symlinks, and `log` -> the test's socket.
const WRAPPER: &str = r#"set -eu
pamd=$1 logsock=$2 olddev=$3
shift 3
mount --make-rprivate /
mount --bind "$pamd" /etc/pam.d
mount --rbind /dev "$olddev"
mount -t tmpfs -o mode=0755,size=1m mailmfa-test-dev /dev
for n in null zero full random urandom tty; do
    : > "/dev/$n"
    mount --bind "$olddev/$n" "/dev/$n"
done
mkdir /dev/pts /dev/shm
mount --rbind "$olddev/pts" /dev/pts
mount --rbind "$olddev/shm" /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s fd/0 /dev/stdin
ln -s fd/1 /dev/stdout
ln -s fd/2 /dev/stderr
ln -s pts/ptmx /dev/ptmx
ln -s "$logsock" /dev/log
umount -l "$olddev"
exec "$@"
"#;

/// A command that runs `program args...` in a new mount namespace where /etc/pam.d is
/// `pam_d` (a bind mount: later edits to files in `pam_d` are seen at the next login) and
/// /dev/log is a symlink to `syslog_socket`. `scratch` must be an empty dir the wrapper may
/// mount on. `unshare` and `sh` exec, so the child's PID is the daemon's PID.
pub fn namespaced(
    pam_d: &Path,
    syslog_socket: &Path,
    scratch: &Path,
    program: &Path,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(super::program("unshare"));
    cmd.arg("--mount")
        .arg("--propagation")
        .arg("private")
        .arg("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("mailmfa-test-ns")
        .arg(pam_d)
        .arg(syslog_socket)
        .arg(scratch)
        .arg(program)
        .args(args);
    cmd
}
