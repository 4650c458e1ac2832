//! What is measured: the PAM stacks under test ([`Module`]), the password step that follows
//! them ([`Pw`]), the timed cases of a batch ([`Case`]) and the samples one (module, password
//! step, scale, case) collects ([`Sample`]).

use super::notify::Spool;
use super::sql::Engine;
use std::collections::BTreeMap;

/// A PAM stack under test (before its password step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Module {
    /// No second factor: only the password step. What libpam itself costs.
    Floor,
    /// `pam_mailmfa.so split` + password + `pam_mailmfa.so verify`.
    Mailmfa,
    /// Debian's pam_oath: `usersfile=... digits=6 window=1`.
    Oath,
    /// Debian's pam_google_authenticator: `forward_pass secret=... user=root noskewadj`.
    Ga,
    /// pam_google_authenticator with its default time-skew search (no `noskewadj`).
    GaSkew,
    /// mailmfa with `[notify] enabled = true, alert_after = 1` (issue 18) and this spool.
    Notify(Spool),
    /// mailmfa with `records = "sql"` (issue 15) in this server; the state in files.
    Sql(Engine),
}

impl Module {
    pub(super) const ALL: [Module; 5] = [
        Module::Floor,
        Module::Mailmfa,
        Module::Oath,
        Module::Ga,
        Module::GaSkew,
    ];

    pub(super) fn key(self) -> &'static str {
        match self {
            Module::Floor => "floor",
            Module::Mailmfa => "mailmfa",
            Module::Oath => "oath",
            Module::Ga => "ga",
            Module::GaSkew => "ga-skew",
            Module::Notify(spool) => spool.key(),
            Module::Sql(engine) => engine.key(),
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            Module::Floor => "floor (password step only)",
            Module::Mailmfa => "mailmfa (split, password, verify)",
            Module::Oath => "pam_oath (digits=6 window=1)",
            Module::Ga => "google-auth (forward_pass noskewadj)",
            Module::GaSkew => "google-auth default (skew search on)",
            Module::Notify(spool) => spool.title(),
            Module::Sql(engine) => engine.title(),
        }
    }

    /// `pam_mailmfa.so` (split, password, verify), with or without `[notify]`, records in
    /// files or SQL.
    pub(super) fn is_mailmfa(self) -> bool {
        matches!(self, Module::Mailmfa | Module::Notify(_) | Module::Sql(_))
    }

    /// The timed passes of this module's batch, in order.
    pub(super) fn cases(self) -> &'static [Case] {
        match self {
            Module::Floor => &[Case::Login],
            Module::Mailmfa => &[Case::First, Case::Fresh, Case::Reuse, Case::Wrong],
            Module::Oath | Module::Ga => &[Case::First, Case::Reuse, Case::Wrong],
            Module::GaSkew => &[Case::Wrong],
            Module::Notify(spool) => spool.cases(),
            Module::Sql(_) => &[Case::First, Case::Reuse, Case::Wrong],
        }
    }
}

/// One timed pass of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Case {
    /// Floor: the password alone.
    Login,
    /// First use of the current step by a returning mailbox (its state holds a step of a
    /// minute ago): the module rewrites its state. What every active mailbox does once a step.
    First,
    /// mailmfa only: the first login ever of a mailbox (no lock file, no state): both created.
    Fresh,
    /// The code already used, again, from the same client (a reconnecting mail client).
    Reuse,
    /// A wrong code after the right password.
    Wrong,
}

impl Case {
    /// The (module, case) pairs that the scale table and the callgrind runs compare, in the
    /// report's order.
    pub(super) const COMPARED: [(Module, Case); 11] = [
        (Module::Floor, Case::Login),
        (Module::Mailmfa, Case::Reuse),
        (Module::Mailmfa, Case::First),
        (Module::Mailmfa, Case::Fresh),
        (Module::Mailmfa, Case::Wrong),
        (Module::Oath, Case::First),
        (Module::Oath, Case::Wrong),
        (Module::Ga, Case::Reuse),
        (Module::Ga, Case::First),
        (Module::Ga, Case::Wrong),
        (Module::GaSkew, Case::Wrong),
    ];

    pub(super) fn title(self) -> &'static str {
        match self {
            Case::Login => "password only",
            Case::First => "first use of a new step (state written)",
            Case::Fresh => "first login ever (lock and state created)",
            Case::Reuse => "right code reused, same client",
            Case::Wrong => "wrong code",
        }
    }
}

/// The password step that follows the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Pw {
    /// `pam_permit`: isolates the second factor.
    Permit,
    /// `pam_pwdfile` with a SHA-512 crypt (`openssl passwd -6`) line per mailbox.
    Pwdfile,
}

impl Pw {
    pub(super) fn key(self) -> &'static str {
        match self {
            Pw::Permit => "permit",
            Pw::Pwdfile => "pwdfile",
        }
    }
}

/// Samples of one (module, password step, scale, case).
#[derive(Default, Clone)]
pub(super) struct Sample {
    /// Time of each login, ns.
    pub(super) ns: Vec<u64>,
    /// CPU time (user + system) of this process during each login, ns: what other load on
    /// the machine changes least.
    pub(super) cpu: Vec<u64>,
    /// Logins whose outcome (success, and mailmfa's reason) was what the case expects.
    pub(super) as_expected: usize,
    /// mailmfa's published reasons, counted (proves which path ran).
    pub(super) reasons: BTreeMap<String, usize>,
}

impl Sample {
    pub(super) fn p50(&self) -> f64 {
        percentile(&self.ns, 0.50)
    }
    pub(super) fn p90(&self) -> f64 {
        percentile(&self.ns, 0.90)
    }
    pub(super) fn p99(&self) -> f64 {
        percentile(&self.ns, 0.99)
    }
    pub(super) fn mean(&self) -> f64 {
        if self.ns.is_empty() {
            return f64::NAN;
        }
        self.ns.iter().sum::<u64>() as f64 / self.ns.len() as f64
    }
    pub(super) fn per_sec(&self) -> f64 {
        1e9 / self.mean()
    }
    pub(super) fn cpu_p50(&self) -> f64 {
        percentile(&self.cpu, 0.50)
    }
    pub(super) fn cpu_p90(&self) -> f64 {
        percentile(&self.cpu, 0.90)
    }
}

/// The value at fraction `q` of the samples (nearest rank).
fn percentile(samples: &[u64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

pub(super) type Key = (Module, Pw, usize, Case);
