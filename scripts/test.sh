#!/usr/bin/env bash
# The one command that sets up and runs the whole test suite: Debian packages, build, unit
# tests, libpam tests, command tests and the real Dovecot/Postfix/saslauthd integration tests.
# .ci/run calls exactly this. With CI=true a missing prerequisite fails the run instead of
# being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# The fault-injection feature adds a module argument used only by the panic-guard test.
features=(--all-features)
start=$(date +%s)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run "${features[@]}" --no-fail-fast "$@"
else
  cargo test "${features[@]}" --no-fail-fast "$@"
fi
echo "test.sh: whole suite took $(( $(date +%s) - start )) s"
