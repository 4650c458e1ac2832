#!/usr/bin/env bash
# Builds mailmfa in release mode and installs it on this machine (run as root):
#   - the PAM module as <PAM module dir>/pam_mailmfa.so (next to pam_unix.so), mode 0644
#   - the command as /usr/local/sbin/mailmfa
#   - /etc/mailmfa/mailmfa.toml (kept if it exists), /var/lib/mailmfa/{users,state} (0700 root)
# It does not touch /etc/pam.d: copy a file from pam.d-examples/ yourself (docs/deployment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

cargo build --release --workspace --bins --lib
target="${CARGO_TARGET_DIR:-target}"
pam_unix=$(find /lib /usr/lib -name pam_unix.so -path '*security*' 2>/dev/null | head -n1)
[ -n "$pam_unix" ] || { echo "install.sh: cannot find the PAM module directory (pam_unix.so)" >&2; exit 1; }
moddir=$(dirname "$pam_unix")
install -m 0644 -o root -g root "$target/release/libmailmfa.so" "$moddir/pam_mailmfa.so"
install -m 0755 -o root -g root "$target/release/mailmfa" /usr/local/sbin/mailmfa
# The User Panel (`mailmfa serve` runs it from beside mailmfa); setting it up: docs/panel.md.
install -m 0755 -o root -g root "$target/release/mailmfa-panel" /usr/local/sbin/mailmfa-panel
install -d -m 0755 -o root -g root /etc/mailmfa
if [ ! -e /etc/mailmfa/mailmfa.toml ]; then
  install -m 0644 -o root -g root mailmfa.toml.example /etc/mailmfa/mailmfa.toml
fi
install -d -m 0755 -o root -g root /var/lib/mailmfa
install -d -m 0700 -o root -g root /var/lib/mailmfa/users /var/lib/mailmfa/state
echo "installed: $moddir/pam_mailmfa.so, /usr/local/sbin/mailmfa, /usr/local/sbin/mailmfa-panel, /etc/mailmfa/mailmfa.toml"
