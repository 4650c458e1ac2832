#!/usr/bin/env bash
# The one command that sets up and runs the whole test suite: Debian packages, build, unit
# tests, libpam tests, command tests, the real Dovecot/Postfix/saslauthd integration tests and
# the User Panel's tests (headless Chromium, nginx).
# .ci/run calls exactly this. With CI=true a missing prerequisite fails the run instead of
# being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# The fault-injection feature adds a module argument used only by the panic-guard test.
features=(--all-features)
start=$(date +%s)
# The whole workspace: the root package (module, command) and panel/ (mailmfa-panel). Built
# first, so that the panel's tests find the `mailmfa-panel` binary beside `mailmfa`.
cargo build --workspace "${features[@]}"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace "${features[@]}" --no-fail-fast "$@"
else
  cargo test --workspace "${features[@]}" --no-fail-fast "$@"
fi
echo "test.sh: whole suite took $(( $(date +%s) - start )) s"
