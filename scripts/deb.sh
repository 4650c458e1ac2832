#!/usr/bin/env bash
# The one command that makes the Debian package (issue 16, docs/packaging.md):
#   scripts/deb.sh          -> target/debian/mailmfa_<version>-<revision>_amd64.deb
# It installs what is missing (lintian, dpkg-dev, gcc, libpam0g-dev with apt; cargo-deb with
# `cargo install cargo-deb --locked`), builds the release binaries (module, command, panel),
# packs them with `cargo deb` from the [package.metadata.deb] section of Cargo.toml, packs
# them a second time to check that the .deb is byte-identical (SOURCE_DATE_EPOCH), and runs
# lintian, which must report no error and no warning (overrides: debian/lintian-overrides).
# The package's contents and why: docs/packaging.md. tests/package_deb.rs installs it in a
# throwaway root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "deb.sh: $*"; }

# No stale package survives a failed run: tests/package_deb.rs would test it.
target="${CARGO_TARGET_DIR:-target}"
rm -f "$target"/debian/mailmfa_*.deb

# The module's path in Cargo.toml is Debian amd64's PAM directory.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
if [ "$multiarch" != x86_64-linux-gnu ]; then
  say "this is $multiarch; the package puts pam_mailmfa.so in /usr/lib/x86_64-linux-gnu/security:"
  say "change that asset in Cargo.toml ([package.metadata.deb]) first"
  exit 1
fi

# Debian's tools: lintian (the check), dpkg-dev (dpkg-shlibdeps, dpkg-parsechangelog for
# cargo-deb and below), gcc and libpam0g-dev (to link the module).
need=()
for pkg in lintian dpkg-dev gcc libpam0g-dev; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "missing Debian packages ${need[*]}: run as root, or apt-get install them" >&2; exit 1; }
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
  say "installing cargo-deb"
  cargo install cargo-deb --locked
fi

# Reproducible: every time stamp in the .deb is the date of the changelog's last entry (as
# Debian's own builds do), and the binaries hold no path of this checkout, of the target
# directory or of ~/.cargo.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l debian/changelog -STimestamp)
export SOURCE_DATE_EPOCH
mkdir -p "$target"
target_abs=$(cd "$target" && pwd)
export RUSTFLAGS="--remap-path-prefix=$PWD=. --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=$target_abs=/target"
export TZ=UTC

# The version in debian/changelog and in Cargo.toml must agree (cargo-deb adds revision 1).
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
changelog_version=$(dpkg-parsechangelog -l debian/changelog -SVersion)
if [ "$changelog_version" != "$crate_version-1" ]; then
  say "debian/changelog's last entry is $changelog_version, Cargo.toml says $crate_version (-1): add a changelog entry" >&2
  exit 1
fi

# Assets made from one source with the packaged paths: the systemd unit of contrib/ names
# /usr/local/sbin (scripts/install.sh), the package's binaries are in /usr/sbin. (The shell
# completions are made below, by the built command.)
mkdir -p target/deb-assets
sed -e 's|/usr/local/sbin/|/usr/sbin/|g' -e 's|/usr/local/share/doc/|/usr/share/doc/|g' \
  contrib/systemd/mailmfa-panel.service > target/deb-assets/mailmfa-panel.service

deb="$target/debian/mailmfa_${changelog_version}_amd64.deb"
# All three artifacts: cargo deb alone would build only the root package, not panel/.
cargo build --release --locked --workspace --bins --lib

# From the command line's one definition (src/cli/command.rs, docs/cli.md): the shell
# completions, and a check that man/mailmfa.1 is the page it makes (the tests check it too).
mkdir -p target/deb-assets/completions
for shell_file in bash:mailmfa zsh:_mailmfa fish:mailmfa.fish; do
  "$target/release/mailmfa" completions "${shell_file%%:*}" > "target/deb-assets/completions/${shell_file#*:}"
done
if ! "$target/release/mailmfa" manpage | cmp -s - man/mailmfa.1; then
  say "man/mailmfa.1 is not what \`mailmfa manpage\` prints: run" >&2
  say "  cargo run -q --bin mailmfa -- manpage > man/mailmfa.1" >&2
  exit 1
fi
# Packed twice from the same binaries: byte for byte the same. (Each `cargo deb` empties
# target/debian/ first, so the copy to compare with is packed first, elsewhere.)
again=$(mktemp -d)
trap 'rm -rf "$again"' EXIT
cargo deb --no-build --locked --quiet -o "$again/first.deb"
cargo deb --no-build --locked -o "$deb"
if ! cmp -s "$deb" "$again/first.deb"; then
  say "not reproducible: two packings of the same build differ" >&2
  exit 1
fi

# lintian: errors and warnings fail; info tags are shown, not fatal. The overridden tags (O:)
# and their reasons (N:) are shown by a second run: with --show-overrides lintian counts them
# for --fail-on.
say "lintian:"
lintian --fail-on error,warning --display-info "$deb"
say "lintian overrides (debian/lintian-overrides):"
lintian --show-overrides "$deb" 2>/dev/null | grep -E '^(O|N):' || true
say "lintian: no error, no warning"
say "built $deb ($(stat -c %s "$deb") bytes)"
