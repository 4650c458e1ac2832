#!/usr/bin/env bash
# Installs the Debian packages that building and testing mailmfa need (idempotent).
#
# Used by scripts/test.sh and scripts/demo.sh. The password prompt's tests (tests/cli_prompt.rs)
# drive the command in a pseudo-terminal with `script` (bsdutils; `stty` is coreutils).
# The User Panel's tests add headless Chromium and
# its WebDriver (chromium, chromium-driver), zbarimg (zbar-tools) to read the QR code from a
# screenshot, nginx (the TLS proxy example) and ab (apache2-utils, the panel benchmark).
# The webmail tests add Debian's Roundcube (roundcube-core, roundcube-sqlite3) served by PHP's
# own server (php8.2-cli; naming php8.2-cgi keeps apt from pulling Apache), preseeded so that
# dbconfig-common makes no system database and no web server is reconfigured.
# The SQL records' tests (issue 15) start their own PostgreSQL (postgresql-15: initdb, postgres)
# and MariaDB (mariadb-server: mariadb-install-db, mariadbd) in temp dirs; the policy-rc.d
# below keeps the packages' own clusters from starting.
# Needs root when something is missing. Package
# scripts must not start the real daemons on their default ports: a policy-rc.d that denies
# it is put in place when the machine has none (Debian's documented mechanism).
set -euo pipefail

packages=(
  libpam0g-dev pamtester openssl binutils
  dovecot-core dovecot-imapd dovecot-pop3d
  postfix sasl2-bin libsasl2-modules
  libpam-pwdfile libpam-oath oathtool libpam-google-authenticator
  zbar-tools librsvg2-bin fail2ban util-linux bsdutils strace
  whois redis-server redis-tools
  chromium chromium-driver nginx-light apache2-utils
  roundcube-core roundcube-sqlite3 php8.2-cli php8.2-cgi php8.2-sqlite3
  postgresql-15 postgresql-client-15 mariadb-server mariadb-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root, or: apt-get install ${missing[*]}" >&2
  exit 1
fi
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# mailmfa tests: keep package scripts from starting daemons.\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
debconf-set-selections <<'EOF'
roundcube-core roundcube/dbconfig-install boolean false
roundcube-core roundcube/reconfigure-webserver multiselect
roundcube-core roundcube/restart-webserver boolean false
EOF
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${missing[*]}"
