//! The mailboxes as data: names, secrets and codes (mailmfa's own TOTP), the clock's steps,
//! the random picks, and the text of each module's file for one mailbox; plus the small file
//! helpers every part of the harness writes with.

use super::PERIOD;
use mailmfa::otp::{Algorithm, Params};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) fn user_name(i: usize) -> String {
    format!("u{i}@bench.test")
}

/// The 160-bit secret of mailbox `i`, the same for all three modules.
pub(super) fn secret_of(i: usize) -> [u8; 20] {
    let digest = Sha256::digest(format!("mailmfa-bench secret {i}").as_bytes());
    let mut secret = [0u8; 20];
    secret.copy_from_slice(&digest[..20]);
    secret
}

fn base32(secret: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, secret)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The six-digit code of mailbox `i` at time step `step`, computed by mailmfa's own TOTP.
pub(super) fn code(i: usize, step: u64) -> String {
    let secret = secret_of(i);
    let params = Params {
        secret: &secret,
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: PERIOD,
    };
    String::from_utf8(params.code(step).to_vec()).expect("digits")
}

/// A code that matches none of the steps a module accepts at `step` (±1) for mailbox `i`.
pub(super) fn wrong_code(i: usize, step: u64, rng: &mut Rng) -> String {
    let valid: Vec<String> = (step - 1..=step + 1).map(|s| code(i, s)).collect();
    loop {
        let c = format!("{:06}", rng.next() % 1_000_000);
        if !valid.contains(&c) {
            return c;
        }
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The current step, after waiting out the last 3 s of a step: everything prepared for a step
/// stays valid (window ±1) for at least 30 s after this returns.
pub(super) fn fresh_step() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let into = t.as_secs_f64() % PERIOD as f64;
    if PERIOD as f64 - into < 3.0 {
        std::thread::sleep(Duration::from_secs_f64(PERIOD as f64 - into + 0.05));
    }
    unix_now() / PERIOD
}

/// xorshift64*: picks mailboxes and wrong codes.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Rng(seed)
    }
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `k` mailboxes of a pool of `n`: distinct when the pool is big enough, else the pool cycled.
pub(super) fn pick(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    if n >= k {
        let mut seen = HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let i = rng.below(n);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    } else {
        (0..k).map(|j| j % n).collect()
    }
}

pub(super) fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

pub(super) fn mkdir_0700(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

pub(super) fn ctx<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// The mailmfa record of mailbox `i`, in the format of `src/record.rs`.
pub(super) fn record_text(i: usize, created: u64) -> String {
    format!(
        "version = 1\nsecret = \"{}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\ncreated = {created}\n",
        base32(&secret_of(i))
    )
}

/// The pam_google_authenticator secret file of mailbox `i`.
pub(super) fn ga_text(i: usize, disallow_reuse: bool) -> String {
    format!(
        "{}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n{}",
        base32(&secret_of(i)),
        if disallow_reuse {
            "\" DISALLOW_REUSE\n"
        } else {
            ""
        }
    )
}

/// The pam_oath usersfile line of mailbox `i` (`+`: the password is checked by the next module).
pub(super) fn oath_line(i: usize) -> String {
    format!("HOTP/T30/6 {} + {}\n", user_name(i), hex(&secret_of(i)))
}
