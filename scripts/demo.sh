#!/usr/bin/env bash
# The demo, in one command (as root, on Debian 12): builds the module and the command, starts a
# throwaway Dovecot on 127.0.0.1 whose PAM stack is pam.d-examples/dovecot-virtual, creates a
# demo mailbox, turns MFA on for it (QR code and URI), logs in over IMAP with password + current
# code, shows a wrong code refused with its reason, then stops everything and removes what it
# created. The machine's /etc/pam.d and services are not touched: Dovecot runs in a private
# mount namespace in which the demo's own directory is /etc/pam.d.
#
# scripts/demo.sh --panel: the same Dovecot and mailbox (MFA off), plus the User Panel
# (mailmfa-panel, as the unprivileged account `nobody`) on http://127.0.0.1:8470/, signing in
# through that Dovecot. It prints the URL and the mailbox's password and runs until Ctrl-C;
# turn MFA on in the browser, then try IMAP logins with scripts' imap_login or any client.
#
# scripts/demo.sh --webmail: the same, plus Debian's Roundcube with the mailmfa plugin on
# http://127.0.0.1:8480/ (PHP's own server, a private config and plugin folder in a private
# mount namespace): turn MFA on in Settings → Two-factor authentication, log out, log in again
# with the code step. Sending mail is not set up (no SMTP server in the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

panel=0
webmail=0
[ "${1:-}" = "--panel" ] && panel=1
[ "${1:-}" = "--webmail" ] && panel=1 && webmail=1
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (Dovecot and the private mount namespace need it)" >&2; exit 1; }
say "Installing the Debian packages the demo needs (skipped when present)"
scripts/install-deps.sh
say "Building mailmfa (release)"
cargo build --release --quiet --workspace --bins --lib
target="${CARGO_TARGET_DIR:-$repo/target}"
mailmfa="$target/release/mailmfa"
module="$target/release/libmailmfa.so"

demo=$(mktemp -d /tmp/mailmfa-demo.XXXXXX)
chmod 0711 "$demo"
dovecot_pid=""
panel_pid=""
roundcube_pid=""
cleanup() {
  # A second INT/TERM (Ctrl-C twice, or timeout's signal after ours) must not cut it short.
  trap '' INT TERM
  if [ -n "$roundcube_pid" ]; then
    kill -TERM -- "-$roundcube_pid" 2>/dev/null || true
    wait "$roundcube_pid" 2>/dev/null || true
  fi
  if [ -n "$panel_pid" ]; then
    kill -TERM "$panel_pid" 2>/dev/null || true
    wait "$panel_pid" 2>/dev/null || true
  fi
  if [ -n "$dovecot_pid" ]; then
    # Dovecot runs in its own process group (setsid): stop the master and its children.
    kill -TERM -- "-$dovecot_pid" 2>/dev/null || true
    wait "$dovecot_pid" 2>/dev/null || true
    kill -KILL -- "-$dovecot_pid" 2>/dev/null || true
  fi
  rm -rf "$demo"
}
trap cleanup EXIT
# Ctrl-C or a TERM ends the script through its EXIT trap (bash would otherwise wait on).
trap 'exit 130' INT TERM

user="demo@example.test"
password='T9D3K!px'
port=$(( 20000 + RANDOM % 20000 ))

say "Setting up a demo mailbox $user with password $password in $demo"
install -d -m 0700 "$demo/users" "$demo/state" "$demo/pam.d"
install -d -m 0755 "$demo/run" "$demo/lib"
install -d -m 0777 "$demo/home"
cat > "$demo/mailmfa.toml" <<TOML
record_dir = "$demo/users"
state_dir = "$demo/state"
issuer = "mailmfa demo"
TOML
chmod 0600 "$demo/mailmfa.toml"
printf '%s:%s\n' "$user" "$(printf '%s' "$password" | openssl passwd -6 -stdin)" > "$demo/passwd.pam"
# The shipped example stack, pointed at the built module, the demo config and password file.
sed -e "s|pam_mailmfa.so split|$module split config=$demo/mailmfa.toml|" \
    -e "s|pam_mailmfa.so verify|$module verify config=$demo/mailmfa.toml|" \
    -e "s|pam_mailmfa.so account|$module account|" \
    -e "s|/etc/dovecot/passwd.pam|$demo/passwd.pam|" \
    pam.d-examples/dovecot-virtual > "$demo/pam.d/dovecot"
# The webmail plugin's precheck: the password line alone (pam.d-examples/mailmfa-precheck).
sed -e "s|pam_mailmfa.so account|$module account|" \
    -e "s|/etc/dovecot/passwd.pam|$demo/passwd.pam|" \
    pam.d-examples/mailmfa-precheck > "$demo/pam.d/mailmfa-precheck"
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' > "$demo/pam.d/other"
grep -v '^#' "$demo/pam.d/dovecot"

cat > "$demo/dovecot.conf" <<CONF
instance_name = mailmfa-demo
base_dir = $demo/run
state_dir = $demo/lib
log_path = $demo/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
# Every service on the `dovecot` stack, except the panel's precheck (docs/webmail.md).
passdb {
  driver = pam
  args = %{if;%s;eq;mailmfa-precheck;mailmfa-precheck;dovecot}
}
# Roundcube on this host forwards the browser's address (x-originating-ip).
login_trusted_networks = 127.0.0.0/8
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$demo/home/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
# The User Panel's client socket (used with --panel), owned by the panel's account.
service auth {
  unix_listener auth-mailmfa {
    mode = 0600
    user = nobody
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
CONF
doveconf -c "$demo/dovecot.conf" -n > /dev/null

say "Starting a throwaway Dovecot on 127.0.0.1:$port (its own /etc/pam.d in a private mount namespace)"
setsid unshare --mount sh -c "mount --bind '$demo/pam.d' /etc/pam.d && exec dovecot -F -c '$demo/dovecot.conf'" &
dovecot_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

if [ "$panel" = 1 ]; then
  # The panel runs as `nobody` (never root): it owns the records it writes, the module
  # accepts them because mailmfa.toml names that account, and it keeps its own state dir.
  chown nobody: "$demo/users"
  install -d -m 0700 -o nobody -g nogroup "$demo/panel"
  cat >> "$demo/mailmfa.toml" <<TOML
record_owner = "nobody"

[panel]
listen = "127.0.0.1:8470"
auth_socket = "$demo/run/auth-mailmfa"
state_dir = "$demo/panel"
TOML
  if [ "$webmail" = 1 ]; then
    # The admin token: the panel reads it as nobody, Roundcube (here root) reads its copy.
    openssl rand -hex 32 > "$demo/panel-admin.token"
    chown nobody: "$demo/panel-admin.token"
    chmod 0600 "$demo/panel-admin.token"
    install -m 0600 "$demo/panel-admin.token" "$demo/roundcube-panel.token"
    echo "admin_token_file = \"$demo/panel-admin.token\"" >> "$demo/mailmfa.toml"
  fi
  chmod 0644 "$demo/mailmfa.toml"
  for _ in $(seq 100); do [ -S "$demo/run/auth-mailmfa" ] && break; sleep 0.1; done
  say "Starting the User Panel as nobody"
  setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$target/release/mailmfa-panel" --config "$demo/mailmfa.toml" &
  panel_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8470) 2>/dev/null && break; sleep 0.1; done
  if [ "$webmail" = 1 ]; then
    # Debian's Roundcube, its config in $demo/roundcube (ROUNDCUBE_CONFIG_DIR) and a plugin
    # folder with the mailmfa plugin mounted over /var/lib/roundcube/plugins privately.
    rc="$demo/roundcube"
    install -d -m 0700 "$rc" "$rc/config" "$rc/db" "$rc/logs" "$rc/temp" "$rc/plugins"
    ln -s /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$rc/config/"
    cp -a /var/lib/roundcube/plugins/. "$rc/plugins/"
    cp -R contrib/roundcube/mailmfa "$rc/plugins/mailmfa"
    cat > "$rc/config/config.inc.php" <<PHP
<?php
\$config = [];
\$config['db_dsnw'] = 'sqlite:///$rc/db/roundcube.db?mode=0640';
\$config['imap_host'] = '127.0.0.1:$port';
\$config['imap_auth_type'] = 'PLAIN';
\$config['log_dir'] = '$rc/logs';
\$config['temp_dir'] = '$rc/temp';
\$config['des_key'] = '$(openssl rand -hex 12)';
\$config['skin'] = 'elastic';
\$config['product_name'] = 'mailmfa demo webmail';
\$config['plugins'] = ['mailmfa'];
\$config['mailmfa_panel_url'] = 'http://127.0.0.1:8470';
\$config['mailmfa_admin_token_file'] = '$demo/roundcube-panel.token';
PHP
    say "Starting Roundcube with the mailmfa plugin on http://127.0.0.1:8480/"
    ROUNDCUBE_CONFIG_DIR="$rc/config" setsid unshare --mount --propagation private sh -c \
      "mount --bind '$rc/plugins' /var/lib/roundcube/plugins && exec php -S 127.0.0.1:8480 -t /var/lib/roundcube/public_html" \
      > "$rc/php.log" 2>&1 &
    roundcube_pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8480) 2>/dev/null && break; sleep 0.1; done
    say "Open http://127.0.0.1:8480/ and log in as $user with the password $password"
    echo "Settings → Two-factor authentication turns MFA on; log out and in again for the code step."
    echo "The User Panel is on http://127.0.0.1:8470/ too. Ctrl-C stops everything."
  else
    say "Open http://127.0.0.1:8470/ and sign in as $user with the password $password"
    echo "(from another machine: ssh -L 8470:127.0.0.1:8470 this-host, then the same URL)"
    echo "IMAP for a mail client: 127.0.0.1:$port, no TLS. Ctrl-C stops everything."
  fi
  wait "$panel_pid" || true
  exit 0
fi

imap_login() { # user password -> the server's tagged reply
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  local line
  read -r line <&3
  printf 'a1 LOGIN "%s" "%s"\r\na2 LOGOUT\r\n' "$1" "$2" >&3
  while read -r line <&3; do
    case "$line" in a1\ *) printf '%s\n' "${line%$'\r'}"; break ;; esac
  done
  exec 3>&-
}

say "Turning MFA on: mailmfa enable $user"
# The demo plays the phone: it reads the secret from the URI the command prints (as the app
# would by scanning the QR code) and answers with the app's current code.
coproc ENABLE { "$mailmfa" --config "$demo/mailmfa.toml" enable "$user" 2>&1; }
enable_pid=$ENABLE_PID
secret=""
while IFS= read -r line <&"${ENABLE[0]}"; do
  printf '%s\n' "$line"
  case "$line" in
    *otpauth://*) secret=$(printf '%s' "$line" | sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p'); break ;;
  esac
done
[ -n "$secret" ] || { echo "demo.sh: the command printed no otpauth:// URI" >&2; exit 1; }
code=$(oathtool --totp -b "$secret")
printf '%s\n' "$code" >&"${ENABLE[1]}"
cat <&"${ENABLE[0]}"
wait "$enable_pid" || { echo "demo.sh: mailmfa enable failed" >&2; exit 1; }
echo

# The confirming code counts as used; a login takes the next step's code.
now=$(date +%s)
sleep $(( 30 - now % 30 + 1 ))
code=$(oathtool --totp -b "$secret")
say "IMAP login with password + current code: \"$password$code\""
reply=$(imap_login "$user" "$password$code")
echo "server: $reply"
case "$reply" in "a1 OK"*) echo "=> logged in" ;; *) echo "demo.sh: the right code was refused" >&2; exit 1 ;; esac

wrong=$(printf '%06d' $(( (10#$code + 500000) % 1000000 )))
say "IMAP login with a wrong code: \"$password$wrong\""
reply=$(imap_login "$user" "$password$wrong")
echo "server: $reply"
case "$reply" in "a1 NO"*) echo "=> refused" ;; *) echo "demo.sh: a wrong code was accepted" >&2; exit 1 ;; esac
say "Why? mailmfa check runs the same PAM stack and prints the module's reason"
printf '%s\n' "$password$wrong" | "$mailmfa" check --confdir "$demo/pam.d" --service dovecot --rhost 127.0.0.1 "$user" || true

say "mailmfa status $user"
"$mailmfa" --config "$demo/mailmfa.toml" status "$user"

say "Stopping Dovecot and removing $demo"
