#!/usr/bin/env bash
# Builds mailmfa in release mode and installs it on this machine (run as root):
#   - the PAM module as <PAM module dir>/pam_mailmfa.so (next to pam_unix.so), mode 0644
#   - the command as /usr/local/sbin/mailmfa
#   - /etc/mailmfa/mailmfa.toml (kept if it exists), /var/lib/mailmfa/{users,state} (0700 root)
#   - the command's completions for bash, zsh and fish under /usr/local/share
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
# The command's shell completions (docs/cli.md), where bash-completion, zsh and fish look under
# /usr/local.
for dir_file in bash-completion/completions/mailmfa zsh/site-functions/_mailmfa \
  fish/vendor_completions.d/mailmfa.fish; do
  install -d -m 0755 -o root -g root "/usr/local/share/$(dirname "$dir_file")"
done
"$target/release/mailmfa" completions bash > /usr/local/share/bash-completion/completions/mailmfa
"$target/release/mailmfa" completions zsh > /usr/local/share/zsh/site-functions/_mailmfa
"$target/release/mailmfa" completions fish > /usr/local/share/fish/vendor_completions.d/mailmfa.fish
echo "installed: $moddir/pam_mailmfa.so, /usr/local/sbin/mailmfa, /usr/local/sbin/mailmfa-panel, /etc/mailmfa/mailmfa.toml"
