#!/usr/bin/env bash
# Mutation testing of the security core with cargo-mutants (docs/testing.md, "Mutation
# testing"): every mutant of the named files (default: the whole core) is built and run
# against the fast security tests listed in .cargo/mutants.toml; a mutant the tests do not
# catch is MISSED and must be killed by a new test or explained in docs/testing.md.
#
#   scripts/mutants.sh                      the whole core (~580 mutants: hours on 2 cores)
#   scripts/mutants.sh src/split.rs ...     only these files
#
# Not part of scripts/test.sh (too long for CI's 90 minutes); results go to mutants.out/.
set -euo pipefail
cd "$(dirname "$0")/.."

core=(src/auth/*.rs src/split.rs src/otp.rs src/login.rs src/store/secure.rs src/state.rs
      src/credential.rs src/store/redis/mod.rs src/store/redis/resp.rs src/store/redis/address.rs
      src/store/net/slot.rs src/store/sql/mod.rs src/store/sql/seal.rs src/store/sql/schema.rs
      src/store/sql/address.rs src/store/sql/connection.rs src/store/transfer.rs
      src/store/sql/postgres/scram.rs src/store/sql/postgres/wire.rs src/store/sql/mysql/packet.rs)
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("${core[@]}")

scripts/install-deps.sh
if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi
args=()
for f in "${files[@]}"; do args+=(-f "$f"); done
# -j 2: two mutants at a time, each in its own copy of the tree; the libpam and hostile tests
# run as root in private namespaces, so a mutant cannot touch the machine.
exec cargo mutants -p mailmfa "${args[@]}" -j 2 --timeout 180 -o mutants.out
