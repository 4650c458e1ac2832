#!/bin/sh
# Owns the one command of the login benchmark (issue 5): on a fresh Debian 12, as root,
#   scripts/bench.sh [--quick] [--no-million] [--no-sql] [other options of benches/logins/]
#   scripts/bench.sh --panel        the User Panel's benchmark instead (benches/panel.rs:
#                                   requests/s with a session, the sign-in split; about 1 min)
# installs the peers and tools from Debian (idempotent), builds the module in release, runs
# the harness (`cargo bench --bench logins`), which also runs the callgrind measurement, and
# writes the markdown tables to target/bench/logins.md (and prints them).
#
# --quick: scales 1, 1k, 100k, 3 rounds, fewer logins (about 70 s after the build).
# Without it: scales 1, 1k, 100k, 1M, 6 rounds: about 8 minutes on a fresh 2-core machine
# (packages, build, the ext4 image, the 1M pools) and about 4 minutes after that, of which
# the records in SQL (issue 15: a PostgreSQL and a MariaDB started for the run, each scale's
# rows loaded into both, ~40 s for the 1M rows, not kept) take about 1.5; --no-sql leaves
# them out. The mailboxes live in a sparse ext4 image, /var/tmp/mailmfa-bench/mailboxes.ext4
# (about 10 GB used with the 1M pools, kept for the next run; --no-million leaves them out).
# The benchmark asserts nothing about time; see docs/benchmarks.md for how to read it.
set -eu

cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: run as root (installs packages; the peers read root-owned files)" >&2
    exit 1
fi

# Debian packages: libpam0g-dev to link the module, the two peers, pam_pwdfile for the
# realistic password step, oathtool to cross-check codes, openssl for the password hashes,
# valgrind for the instruction counts, util-linux (mount, findmnt) and e2fsprogs (mkfs.ext4)
# for the mailbox file system; postgresql-15 and mariadb-server for the records in SQL (issue
# 15: the harness starts its own servers through tests/servers/, as the tests do; --no-sql
# leaves them out).
packages="libpam0g-dev libpam-oath oathtool libpam-google-authenticator libpam-pwdfile valgrind openssl util-linux e2fsprogs postgresql-15 mariadb-server"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench.sh: installing$missing" >&2
    # Package scripts must not start daemons on a machine without systemd.
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
    apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

command -v cargo >/dev/null 2>&1 || {
    echo "bench.sh: cargo not found (install Rust >= 1.89, e.g. with rustup)" >&2
    exit 1
}

# The module as installed (LTO, stripped, -z nodelete), then the harness (bench profile).
cargo build --release --lib
if [ "${1:-}" = "--panel" ]; then
    # The panel's world is the panel tests' (Dovecot, the module, mailmfa-panel); ab measures.
    scripts/install-deps.sh
    cargo build --release --workspace --bins
    exec cargo bench --bench panel
fi
cargo bench --bench logins --no-run
exec cargo bench --bench logins -- run --module target/release/libmailmfa.so "$@"
