#!/usr/bin/env bash
# The one command that sets up and runs the whole test suite: Debian packages, build, unit
# tests, libpam tests, command tests, the real Dovecot/Postfix/saslauthd integration tests,
# the User Panel's tests (headless Chromium, nginx) and the Debian package's (scripts/deb.sh).
# .ci/run calls exactly this. Under CI (CI set to anything but empty, 0 or false) a missing
# prerequisite fails the run instead of being skipped; elsewhere each skipped test writes one
# "SKIPPED: <test>: missing <what>" line to $MAILMFA_SKIP_LOG (tests/skip/), and the run ends
# with the list of them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# The fault-injection feature adds a module argument used only by the panic-guard test.
features=(--all-features)
start=$(date +%s)
# The whole workspace: the root package (module, command) and panel/ (mailmfa-panel). Built
# first, so that the panel's tests find the `mailmfa-panel` binary beside `mailmfa`.
cargo build --workspace "${features[@]}"
# The Debian package for tests/package_deb.rs (issue 16): release build, cargo deb, the
# reproducibility check and lintian. A failure fails the run at the end; the suite still runs
# (the package test then finds no .deb, which fails under CI and is skipped elsewhere).
deb_status=0
scripts/deb.sh || deb_status=$?

skip_log=$(mktemp "${TMPDIR:-/tmp}/mailmfa-skips.XXXXXX")
export MAILMFA_SKIP_LOG="$skip_log"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace "${features[@]}" --no-fail-fast "$@" || status=$?
else
  cargo test --workspace "${features[@]}" --no-fail-fast "$@" || status=$?
fi
echo "test.sh: whole suite took $(( $(date +%s) - start )) s"
skipped=$(sort -u "$skip_log")
rm -f "$skip_log"
if [ -n "$skipped" ]; then
  echo "test.sh: $(printf '%s\n' "$skipped" | wc -l) tests skipped:"
  printf '%s\n' "$skipped"
else
  echo "test.sh: no test skipped"
fi
if [ "$deb_status" != 0 ]; then
  echo "test.sh: scripts/deb.sh failed (exit $deb_status): no package, or lintian found a problem"
  status=1
fi
exit "$status"
