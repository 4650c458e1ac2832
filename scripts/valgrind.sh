#!/usr/bin/env bash
# Memory check of the PAM module (issue 7, item 6): a few hundred logins through the real
# libpam with the built module, under valgrind memcheck.
#
#   scripts/valgrind.sh [ROUNDS]      # default 30 rounds x 14 logins = 420 logins
#
# A tiny C driver (compiled here into a temp dir, linked with -lpam) runs the logins the way
# Dovecot does (pam_start_confdir, PAM_RHOST, pam_authenticate, pam_acct_mgmt, pam_end) over
# the virtual-mailbox stack of pam.d-examples/ and a mix of cases: right code, reused,
# replayed, wrong code, throttled, no code, wrong password, app password, recovery code,
# a mailbox without MFA, unsafe login names, bad module arguments, verify without split.
# A C driver keeps the Rust test harness out of valgrind's view: every allocation it reports
# belongs to libpam, its modules, glibc or mailmfa.
#
# Fails (exit 1) on any invalid read/write, use of uninitialised memory or invalid free
# anywhere, and on any "definitely" or "indirectly lost" block whose stack shows mailmfa
# (libmailmfa.so / pam_mailmfa.so). Leaks of libpam and glibc internals are suppressed by
# the suppression file written below (only frames in libpam.so / libc.so / ld-linux); the
# module is linked with -z nodelete, so its frames stay symbolised after pam_end.
#
# Not part of scripts/test.sh: the default 420 logins take about 45 s on a 2-core machine
# (valgrind runs the debug build some 30x slower; ~0.1 s per login). Needs valgrind, gcc, libpam0g-dev, libpam-pwdfile,
# openssl and oathtool; under CI (CI set to anything but empty, 0 or false, as in tests/skip/)
# a missing one fails, otherwise it is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-30}"

missing=()
for tool in valgrind gcc openssl oathtool; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -e /usr/include/security/pam_appl.h ] || missing+=(libpam0g-dev)
pwdfile_so=$(find /lib /usr/lib -name pam_pwdfile.so -path '*security*' 2>/dev/null | head -n1)
[ -n "$pwdfile_so" ] || missing+=(libpam-pwdfile)
if [ ${#missing[@]} -gt 0 ]; then
  echo "valgrind.sh: missing: ${missing[*]} (scripts/install-deps.sh and apt-get install valgrind)" >&2
  case "$(echo "${CI:-}" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')" in
    "" | 0 | false) ;;
    *) exit 1 ;;
  esac
  echo "!!!!!!!! SKIPPED: valgrind.sh needs ${missing[*]} !!!!!!!!" >&2
  exit 0
fi

start=$(date +%s)
cargo build --lib --quiet
module="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/libmailmfa.so"
[ -f "$module" ] || { echo "valgrind.sh: $module was not built" >&2; exit 1; }

work=$(mktemp -d)
# VALGRIND_LOG=FILE keeps valgrind's log; VALGRIND_NO_SUPP=1 runs without the suppressions
# and shows every leak kind (to review what the suppressions hide).
trap '[ -n "${VALGRIND_LOG:-}" ] && cp "$work/memcheck.log" "$VALGRIND_LOG"; rm -rf "$work"' EXIT
chmod 0700 "$work"
mkdir -m 0700 "$work/users" "$work/state" "$work/pam.d"

cat > "$work/mailmfa.toml" <<EOF
record_dir = "$work/users"
state_dir = "$work/state"
# valgrind is slow: let codes stay valid for the whole run.
window = 10
EOF
chmod 0600 "$work/mailmfa.toml"

# alice has MFA (with an app password and a recovery code), bob has none.
secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
salt_hex=0102030405060708090a0b0c0d0e0f10
salt_bytes=$(printf '%s' "$salt_hex" | sed 's/../\\x&/g')
hash_of() { printf "$salt_bytes%s" "$1" | sha256sum | cut -d' ' -f1; }
app=qwxzvkjhgfdsapoiuytr
recovery=mnbvcxzlkjhg
cat > "$work/users/alice@example.com.toml" <<EOF
version = 1
secret = "$secret"
algorithm = "SHA1"
digits = 6
period = 30
created = 1
recovery_codes = ["sha256\$$salt_hex\$$(hash_of "$recovery")"]

[[app_passwords]]
name = "phone"
hash = "sha256\$$salt_hex\$$(hash_of "$app")"
services = []
created = 1
EOF
chmod 0600 "$work/users/alice@example.com.toml"
printf 'alice@example.com:%s\nbob@example.com:%s\n' \
  "$(openssl passwd -6 'T9D3K!px')" "$(openssl passwd -6 'secret123456')" > "$work/passwd.pam"

cfg="config=$work/mailmfa.toml"
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' > "$work/pam.d/other"
stack() { # service, split args, verify args
  cat > "$work/pam.d/$1" <<EOF
auth [success=done ignore=ignore default=die] $module split $cfg $2
auth requisite pam_pwdfile.so pwdfile=$work/passwd.pam nodelay
auth required $module verify $cfg $3
account required pam_permit.so
EOF
}
stack mail "" ""
stack badargs "windw=2" ""
cat > "$work/pam.d/nosplit" <<EOF
auth requisite pam_pwdfile.so pwdfile=$work/passwd.pam nodelay
auth required $module verify $cfg
account required pam_permit.so
EOF

code=$(oathtool --totp -b "$secret")
wrong=$([ "$code" = 000000 ] && echo 111111 || echo 000000)
# service <TAB> user <TAB> password <TAB> rhost ("-": none)
{
  printf 'mail\talice@example.com\tT9D3K!px%s\t127.0.0.2\n' "$code"      # ok, then reused
  printf 'mail\talice@example.com\tT9D3K!px%s\t127.0.0.3\n' "$code"      # replayed
  printf 'mail\talice@example.com\tT9D3K!px%s\t-\n' "$code"              # replayed, no rhost
  printf 'mail\talice@example.com\tT9D3K!px%s\t127.0.0.4\n' "$wrong"     # bad_code, throttled
  printf 'mail\talice@example.com\tT9D3K!px\t127.0.0.2\n'                # no_code
  printf 'mail\talice@example.com\tWRONG%s\t127.0.0.2\n' "$code"         # code_split, refused
  printf 'mail\talice@example.com\t%s\t127.0.0.5\n' "$app"               # app_password
  printf 'mail\talice@example.com\tT9D3K!px%s\t127.0.0.6\n' "mnbv-cxzl-kjhg" # recovery, then used
  printf 'mail\tbob@example.com\tsecret123456\t127.0.0.2\n'              # no_mfa
  printf 'mail\tALICE@EXAMPLE.COM\tT9D3K!px\t127.0.0.2\n'                # no_code (case variant)
  printf 'mail\t../alice@example.com\tT9D3K!px%s\t127.0.0.2\n' "$code"   # invalid_login
  printf 'mail\t%s\tx\t127.0.0.2\n' "$(head -c 4096 /dev/zero | tr '\0' a)" # invalid_login
  printf 'badargs\tbob@example.com\tsecret123456\t127.0.0.2\n'           # bad_config
  printf 'nosplit\tbob@example.com\tsecret123456\t127.0.0.2\n'           # no_split
} > "$work/logins.tsv"

cat > "$work/driver.c" <<'EOF'
/* Runs the logins of a TSV file ROUNDS times through libpam, like Dovecot. */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct creds { const char *user, *password; };

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
  struct creds *c = data;
  struct pam_response *r = calloc(n, sizeof *r);
  if (!r) return PAM_BUF_ERR;
  for (int i = 0; i < n; i++) {
    if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) r[i].resp = strdup(c->password);
    else if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON) r[i].resp = strdup(c->user);
  }
  *resp = r;
  return PAM_SUCCESS;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: driver CONFDIR LOGINS.tsv ROUNDS\n"); return 2; }
  int rounds = atoi(argv[3]), logins = 0, ok = 0;
  for (int round = 0; round < rounds; round++) {
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 2; }
    char *line = NULL; size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
      line[strcspn(line, "\n")] = 0;
      char *service = strtok(line, "\t"), *user = strtok(NULL, "\t");
      char *password = strtok(NULL, "\t"), *rhost = strtok(NULL, "\t");
      if (!service || !user || !password || !rhost) continue;
      struct creds c = { user, password };
      struct pam_conv pc = { conv, &c };
      pam_handle_t *pamh = NULL;
      int rc = pam_start_confdir(service, user, &pc, argv[1], &pamh);
      if (rc != PAM_SUCCESS) { fprintf(stderr, "pam_start: %d\n", rc); return 2; }
      if (strcmp(rhost, "-") != 0) pam_set_item(pamh, PAM_RHOST, rhost);
      rc = pam_authenticate(pamh, 0);
      if (rc == PAM_SUCCESS) rc = pam_acct_mgmt(pamh, 0);
      if (rc == PAM_SUCCESS) ok++;
      pam_end(pamh, rc);
      logins++;
    }
    free(line);
    fclose(f);
  }
  printf("driver: %d logins, %d let in\n", logins, ok);
  return 0;
}
EOF
gcc -O1 -g -Wall -o "$work/driver" "$work/driver.c" -lpam

# Suppressions for what libpam and glibc keep or leak by design (dlopen'ed module handles,
# libpam's own one-time allocations); nothing that names mailmfa.
cat > "$work/pam-glibc.supp" <<'EOF'
{
   dlopen-internals
   Memcheck:Leak
   match-leak-kinds: definite,indirect,possible,reachable
   ...
   fun:_dl_open
}
{
   dlopen-catch-error
   Memcheck:Leak
   match-leak-kinds: definite,indirect,possible,reachable
   ...
   fun:_dl_catch_error
}
EOF

log="$work/memcheck.log"
status=0
extra=(--suppressions="$work/pam-glibc.supp")
[ -n "${VALGRIND_NO_SUPP:-}" ] && extra=(--show-leak-kinds=all)
valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --keep-debuginfo=yes --num-callers=40 --track-origins=yes \
  "${extra[@]}" --log-file="$log" \
  "$work/driver" "$work/pam.d" "$work/logins.tsv" "$rounds" || status=$?

grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|suppressed:" "$log" || true
failed=0
if [ "$status" -ne 0 ]; then
  echo "valgrind.sh: memcheck reported errors (exit $status):" >&2
  failed=1
fi
if grep -qE "Invalid (read|write|free)|uninitialised|Mismatched free" "$log"; then
  echo "valgrind.sh: invalid memory access" >&2
  failed=1
fi
# A leak record whose stack names the module belongs to the module.
if awk '/are (definitely|indirectly) lost/{rec=1; buf=""} rec{buf=buf"\n"$0} /^==[0-9]+== $/{if(rec && buf ~ /mailmfa/){print buf; found=1} rec=0} END{exit !found}' "$log"; then
  echo "valgrind.sh: a leak belongs to mailmfa (above)" >&2
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  cat "$log" >&2
  exit 1
fi
echo "valgrind.sh: no invalid access, no leak of the module; took $(( $(date +%s) - start )) s"
