//! Hostile paths (issue 11, findings 3 and 4), through the real libpam with the shipped
//! `dovecot-virtual` stack, through [`Store`] and through the `mailmfa` command.
//!
//! - Whoever owns or can write a *parent* of `record_dir`, `state_dir` or the config file can
//!   swap what lies below it: renaming `state/` over `users/` leaves an empty, root-owned
//!   record directory, and every mailbox "has no MFA". Every directory from `/` down is
//!   checked: such a parent denies every login with the directory's reason and a `detail`
//!   naming the parent and its fix; a root-owned sticky ancestor (like `/tmp`) is accepted,
//!   but never as the directory itself; a symlinked ancestor is resolved and its real chain
//!   checked.
//! - A hard link planted at a temp name (`.<name>.tmp`) or at the state lock never makes the
//!   module or the command write into, or lock, another file.
//!
//! The directory tests re-run themselves in a private mount namespace, whose own `/dev/log`
//! lets them read the `detail` of each denial; the hard-link tests need no namespace.

mod cli_support;
mod fixture;
mod hostile;
mod skip;

use fixture::{code, wait_for_step_margin, Fixture};
use hostile::{field, mailmfa_lines, LogSink};
use mailmfa::config::Settings;
use mailmfa::pam::client::Response;
use mailmfa::record::Record;
use mailmfa::store::Store;
use std::fs;
use std::os::unix::fs::{lchown, symlink, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PW: &str = "T9D3K!px";
const BOB_PW: &str = "secret123456";
const IP: Option<&str> = Some("127.0.0.2");
/// What a victim file holds before the attack, and must hold after it.
const PRECIOUS: &str = "precious: not a secret, not a state\n";

/// A fixture with the virtual-mailbox stack as service `mail`, `alice` (MFA) and `bob` (none).
struct World {
    f: Fixture,
    alice: Record,
}

impl World {
    fn new() -> World {
        let (f, alice) = fixture::mail_stack((ALICE, PW), (BOB, BOB_PW));
        World { f, alice }
    }

    /// The fixture's temp directory (root-owned, 0700, in the sticky `/tmp`).
    fn root(&self) -> PathBuf {
        self.f.dir.path().to_path_buf()
    }

    /// Moves the record directory, the state directory and the config file to the given
    /// places (their parents made root-owned, mode 0755) and points the config and the stack
    /// at them.
    fn relocate(&mut self, record_dir: &Path, state_dir: &Path, config: &Path) {
        let moves = [
            (self.f.settings.record_dir.clone(), record_dir),
            (self.f.settings.state_dir.clone(), state_dir),
            (self.f.config.clone(), config),
        ];
        for (from, to) in moves {
            if from != to {
                mkdir_0755(to.parent().unwrap());
                fs::rename(&from, to).unwrap();
            }
        }
        self.f.config = config.to_path_buf();
        self.point(record_dir, state_dir);
    }

    /// Rewrites the config to name these directories (without moving anything).
    fn point(&mut self, record_dir: &Path, state_dir: &Path) {
        let text = format!(
            "record_dir = \"{}\"\nstate_dir = \"{}\"\n",
            record_dir.display(),
            state_dir.display()
        );
        fs::write(&self.f.config, &text).unwrap();
        chmod(&self.f.config, 0o600);
        self.f.settings = Settings::from_toml(&text, &self.f.config).unwrap();
        self.f.install_example("dovecot-virtual", "mail", "");
    }

    /// Alice with her password and her current code.
    fn alice_with_code(&self) -> Response {
        wait_for_step_margin(2);
        let password = format!("{PW}{}", code(&self.alice, 0));
        self.f.login("mail", ALICE, &password, IP)
    }

    /// Alice with her password alone (what a swapped, empty record directory would let in).
    fn alice_password_only(&self) -> Response {
        self.f.login("mail", ALICE, PW, IP)
    }

    fn bob(&self) -> Response {
        self.f.login("mail", BOB, BOB_PW, IP)
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir_0755(path: &Path) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .unwrap();
    chmod(path, 0o755);
}

fn foreign_owner(path: &Path) {
    lchown(path, Some(12345), Some(12345)).unwrap();
}

fn group_writable(path: &Path) {
    chmod(path, 0o775);
}

/// A way to spoil a directory: its name, what it does, and the fix the denial must name.
type Spoiler = (&'static str, fn(&Path), &'static str);

/// Ways a parent directory lets someone else swap what lies below it.
const SPOILERS: [Spoiler; 2] = [
    ("owned by uid 12345", foreign_owner, "chown root"),
    ("group-writable", group_writable, "chmod go-w"),
];

/// Runs `body` in a re-run of test `name` inside a private mount namespace with its own
/// `/dev/log` (loudly skipped without root and `unshare`, failed under CI: see tests/skip/).
fn in_namespace(name: &str, body: impl FnOnce(&LogSink)) {
    match hostile::role().as_deref() {
        Some(hostile::IN_NAMESPACE) => body(&hostile::private_dev_log()),
        Some(other) => panic!("unknown role {other}"),
        None => {
            hostile::rerun_in_namespace(name, &[]);
        }
    }
}

/// Asserts that `r` was denied as a fault with `reason`, and that the last mailmfa log line
/// says so with a detail holding `fix` (`chown root DIR`, `chmod go-w DIR`).
fn assert_fault(r: &Response, logs: &LogSink, reason: &str, fix: &str) {
    assert!(!r.success(), "let in: {r:?}");
    assert_eq!(r.authenticate, libpam_sys::PAM_SYSTEM_ERR, "{r:?}");
    assert_eq!(r.reason.as_deref(), Some(reason), "{r:?}");
    let lines = mailmfa_lines(&logs.take());
    let last = lines.last().expect("a mailmfa log line");
    assert_eq!(field(last, "reason"), reason, "{lines:#?}");
    println!("    {last}");
    let detail = field(last, "detail");
    assert!(detail.contains(fix), "the detail must say `{fix}`: {last}");
}

/// Plants a hard link at `at` to a new victim file `dir/name` (mode 0644, known content),
/// which an attacker wants the module or the command to write into; returns the victim.
fn planted(dir: &Path, name: &str, at: &Path) -> PathBuf {
    let victim = dir.join(name);
    fs::write(&victim, PRECIOUS).unwrap();
    chmod(&victim, 0o644);
    fs::hard_link(&victim, at).unwrap();
    victim
}

/// Asserts the victim holds what it held and still has mode 0644.
fn assert_untouched(victim: &Path) {
    assert_eq!(
        fs::read_to_string(victim).unwrap(),
        PRECIOUS,
        "{} was written through a planted hard link",
        victim.display()
    );
    let mode = fs::metadata(victim).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644, "{} changed mode", victim.display());
}

/// Asserts `path` is a file of its own (one link), mode 0600.
fn assert_own_file(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(meta.is_file(), "{}", path.display());
    assert_eq!(meta.nlink(), 1, "{} shares its inode", path.display());
    assert_eq!(meta.mode() & 0o7777, 0o600, "{}", path.display());
}

/// For each of [`SPOILERS`]: a fresh world, `place` moves what the test is about below a new
/// directory `parent` (in the fixture's temp dir), alice logs in with her code, then `parent`
/// is spoiled and `attack` runs with the fix its denials must name.
fn with_each_spoiled_parent(
    logs: &LogSink,
    parent: &str,
    place: impl Fn(&mut World, &Path),
    attack: impl Fn(&World, &str),
) {
    for (how, spoil, fix) in SPOILERS {
        println!("parent {how}");
        let mut w = World::new();
        let parent = w.root().join(parent);
        place(&mut w, &parent);
        let r = w.alice_with_code();
        assert!(
            r.success(),
            "{how}: the healthy set-up lets alice in: {r:?}"
        );
        spoil(&parent);
        logs.take();
        attack(&w, &format!("{fix} {}", parent.display()));
    }
}

#[test]
fn a_record_dir_below_a_parent_others_control_is_refused_before_and_after_the_swap() {
    in_namespace(
        "a_record_dir_below_a_parent_others_control_is_refused_before_and_after_the_swap",
        |logs| {
            let place = |w: &mut World, lib: &Path| {
                let config = w.f.config.clone();
                w.relocate(&lib.join("users"), &lib.join("state"), &config);
            };
            with_each_spoiled_parent(logs, "lib", place, |w, fix| {
                assert_fault(&w.alice_with_code(), logs, "record_dir_unusable", fix);
                assert_fault(&w.bob(), logs, "record_dir_unusable", fix);
                // The swap whoever controls `lib` can make: the records moved aside, the
                // root-owned state directory (no record in it) renamed into their place.
                let lib = w.f.settings.record_dir.parent().unwrap();
                fs::rename(lib.join("users"), lib.join("users.old")).unwrap();
                fs::rename(lib.join("state"), lib.join("users")).unwrap();
                let r = w.alice_password_only();
                assert_fault(&r, logs, "record_dir_unusable", fix);
            });
        },
    );
}

#[test]
fn a_state_dir_below_a_parent_others_control_is_refused() {
    in_namespace(
        "a_state_dir_below_a_parent_others_control_is_refused",
        |logs| {
            let place = |w: &mut World, var: &Path| {
                let (record_dir, config) = (w.f.settings.record_dir.clone(), w.f.config.clone());
                w.relocate(&record_dir, &var.join("state"), &config);
            };
            with_each_spoiled_parent(logs, "var", place, |w, fix| {
                assert_fault(&w.alice_with_code(), logs, "state_dir_unusable", fix);
            });
        },
    );
}

#[test]
fn a_config_file_below_a_parent_others_control_is_refused() {
    in_namespace(
        "a_config_file_below_a_parent_others_control_is_refused",
        |logs| {
            let place = |w: &mut World, etc: &Path| {
                let (record_dir, state_dir) = (
                    w.f.settings.record_dir.clone(),
                    w.f.settings.state_dir.clone(),
                );
                w.relocate(&record_dir, &state_dir, &etc.join("mailmfa.toml"));
            };
            with_each_spoiled_parent(logs, "etc", place, |w, fix| {
                assert_fault(&w.bob(), logs, "bad_config", fix);
                assert_fault(&w.alice_with_code(), logs, "bad_config", fix);
            });
        },
    );
}

#[test]
fn a_sticky_ancestor_is_accepted_only_when_root_owns_it_and_never_as_the_directory_itself() {
    in_namespace(
        "a_sticky_ancestor_is_accepted_only_when_root_owns_it_and_never_as_the_directory_itself",
        |logs| {
            let mut w = World::new();
            let shared = w.root().join("shared");
            w.relocate(
                &shared.join("users"),
                &shared.join("state"),
                &shared.join("mailmfa.toml"),
            );
            chmod(&shared, 0o1777);
            let r = w.alice_with_code();
            assert!(
                r.success(),
                "a root-owned sticky ancestor is accepted: {r:?}"
            );
            assert_eq!(r.reason.as_deref(), Some("ok"));

            foreign_owner(&shared);
            chmod(&shared, 0o1777);
            logs.take();
            let fix = format!("chown root {}", shared.display());
            assert_fault(&w.bob(), logs, "bad_config", &fix);

            lchown(&shared, Some(0), Some(0)).unwrap();
            chmod(&shared, 0o1777);
            assert!(w.bob().success(), "root owns it again");
            chmod(&w.f.settings.record_dir, 0o1777);
            logs.take();
            assert_fault(&w.bob(), logs, "record_dir_unusable", "chmod go-w");
        },
    );
}

#[test]
fn a_symlinked_ancestor_is_resolved_and_its_real_chain_checked() {
    in_namespace(
        "a_symlinked_ancestor_is_resolved_and_its_real_chain_checked",
        |logs| {
            let mut w = World::new();
            let real = w.root().join("real");
            let config = w.f.config.clone();
            w.relocate(&real.join("users"), &real.join("state"), &config);
            // Debian's `/lib -> usr/lib`: a relative link to the real directory.
            let link = w.root().join("link");
            symlink("real", &link).unwrap();
            w.point(&link.join("users"), &link.join("state"));
            let r = w.alice_with_code();
            assert!(r.success(), "through a symlinked ancestor: {r:?}");

            chmod(&real, 0o777);
            logs.take();
            let fix = format!("chmod go-w {}", real.display());
            assert_fault(&w.alice_with_code(), logs, "record_dir_unusable", &fix);
        },
    );
}

#[test]
fn a_hard_link_at_the_state_temp_name_is_not_written_through() {
    let w = World::new();
    let tmp = w.f.settings.state_dir.join(format!(".{ALICE}.state.tmp"));
    let victim = planted(&w.root(), "victim", &tmp);
    let r = w.alice_with_code();
    assert!(r.success(), "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("ok"));
    assert_untouched(&victim);
    let state = w.f.state(ALICE).expect("the state was written");
    assert_eq!(state.last_client.as_deref(), IP);
    assert_eq!(
        state.last_step,
        Some(w.alice.params().step_at(fixture::now())),
        "{state:?}"
    );
    assert_own_file(&w.f.state_path(ALICE));
    assert!(!tmp.exists(), "no temp file left");
}

#[test]
fn a_hard_link_at_the_lock_file_denies_and_leaves_the_victim_alone() {
    let w = World::new();
    let lock = w.f.settings.state_dir.join(format!("{ALICE}.lock"));
    let victim = planted(&w.root(), "victim", &lock);
    let r = w.alice_with_code();
    assert!(!r.success(), "{r:?}");
    assert_eq!(r.authenticate, libpam_sys::PAM_SYSTEM_ERR, "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("state_lock_failed"), "{r:?}");
    assert_untouched(&victim);
    assert!(w.f.state(ALICE).is_none(), "no state written");
}

#[test]
fn a_hard_link_at_the_record_temp_name_never_receives_the_secret() {
    let f = Fixture::new();
    let tmp = f.settings.record_dir.join(format!(".{ALICE}.toml.tmp"));
    let victim = planted(f.dir.path(), "victim", &tmp);
    let record = f.enable(ALICE);
    assert_untouched(&victim);
    let path = f.record_path(ALICE);
    assert_own_file(&path);
    assert_eq!(
        f.store().read_record(&fixture::login(ALICE)).unwrap(),
        Some(record)
    );
    assert!(!tmp.exists(), "no temp file left");
}

#[test]
fn the_command_never_writes_a_secret_through_a_planted_hard_link() {
    let env = cli_support::Env::new();
    let pending_dir = env.users.join("pending");
    fs::create_dir(&pending_dir).unwrap();
    chmod(&pending_dir, 0o700);
    let tmp = |dir: &Path| dir.join(format!(".{ALICE}.toml.tmp"));
    let pending_victim = planted(env.dir.path(), "pending-victim", &tmp(&pending_dir));
    let record_victim = planted(env.dir.path(), "record-victim", &tmp(&env.users));
    let (record, _) = env.enabled(ALICE);
    assert_untouched(&pending_victim);
    assert_untouched(&record_victim);
    assert_own_file(&env.record_path(ALICE));
    let written = env.record(ALICE).expect("the record was written");
    assert_eq!(written.secret_base32(), record.secret_base32());
}
