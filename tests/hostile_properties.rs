//! Property tests (issue 7, item 2) of the two rules an attacker shapes input against, beyond
//! the unit properties in `src/split.rs` and `src/login.rs`:
//! - the split rule: split then join gives the input back; the code is exactly the last
//!   `digits` ASCII digits and the password never empty; a string is split exactly when it
//!   ends in `digits` ASCII digits after at least one byte; `decide_split` agrees with it for
//!   a login with MFA and never touches the string of a login without;
//! - the login-to-file mapping: no accepted login maps outside its directory (one normal path
//!   component, no `..`, no `/`, no NUL, no leading `.`, never a temp-file name); two
//!   different normalised logins never share a record, state, lock or temp file; case
//!   variants share all of them; normalisation is idempotent; no non-ASCII name (Unicode
//!   look-alikes) is ever accepted.

use mailmfa::auth::{decide_split, CodeKind, SplitDecision, SplitRequest};
use mailmfa::config::Settings;
use mailmfa::login::{Login, MAX_LOGIN_BYTES};
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use mailmfa::split::split;
use mailmfa::store::files::FileStore;
use proptest::prelude::*;
use std::path::{Component, Path, PathBuf};

fn store() -> FileStore {
    let settings = Settings {
        record_dir: PathBuf::from("/srv/mailmfa/users"),
        state_dir: PathBuf::from("/srv/mailmfa/state"),
        ..Settings::default()
    };
    FileStore::new(&settings, 0)
}

/// Every file the store can make for `login`.
fn files(login: &Login) -> Vec<PathBuf> {
    let s = store();
    let state = s.state_path(login);
    let dir = state.parent().unwrap();
    vec![
        s.record_path(login),
        state.clone(),
        dir.join(format!("{login}.lock")),
        dir.join(format!(".{login}.state.tmp")),
        Path::new("/srv/mailmfa/users").join(format!(".{login}.toml.tmp")),
    ]
}

/// Raw names: arbitrary bytes, name-like ASCII, and name-like strings with a non-ASCII or
/// unsafe character spliced in.
fn raw_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[A-Za-z0-9._@+=-]{1,250}".prop_map(String::into_bytes),
        (
            "[A-Za-z0-9][A-Za-z0-9._@+=-]{0,40}",
            prop_oneof![
                Just("\u{0430}"),
                Just("\u{212a}"),
                Just("\u{ff41}"),
                Just("\u{200b}"),
                Just("/"),
                Just(".."),
                Just("%2f"),
                Just("\0"),
                Just(" "),
                Just("\n"),
            ],
            0usize..40,
        )
            .prop_map(|(name, bad, at)| {
                let at = at.min(name.len());
                format!("{}{bad}{}", &name[..at], &name[at..]).into_bytes()
            }),
    ]
}

fn record(digits: u32) -> Record {
    Record::new(
        b"hostile-property-key".to_vec(),
        Algorithm::SHA1,
        digits,
        30,
        0,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_accepted_login_maps_inside_its_directory(raw in raw_name()) {
        if let Ok(login) = Login::parse(&raw) {
            prop_assert!(raw.is_ascii() && !raw.contains(&0));
            prop_assert!(login.as_str().len() <= MAX_LOGIN_BYTES);
            for path in files(&login) {
                let dir = if path.starts_with("/srv/mailmfa/users") {
                    Path::new("/srv/mailmfa/users")
                } else {
                    Path::new("/srv/mailmfa/state")
                };
                prop_assert_eq!(path.parent(), Some(dir), "{:?}", path);
                let name = path.file_name().unwrap().to_str().unwrap();
                prop_assert!(name.len() <= 255, "file name too long: {}", name.len());
                prop_assert!(!name.contains('/') && !name.contains('\0'));
                let last = path.components().next_back().unwrap();
                prop_assert!(matches!(last, Component::Normal(_)), "{:?}", path);
            }
            // A user's own files never start with `.`, so no login reaches a temp file.
            prop_assert!(!login.as_str().starts_with('.'));
        }
    }

    #[test]
    fn different_logins_never_share_a_file(a in raw_name(), b in raw_name()) {
        if let (Ok(la), Ok(lb)) = (Login::parse(&a), Login::parse(&b)) {
            let (fa, fb) = (files(&la), files(&lb));
            if la != lb {
                for p in &fa {
                    prop_assert!(!fb.contains(p), "{:?} shared by {:?} and {:?}", p, la, lb);
                }
            } else {
                prop_assert_eq!(fa, fb);
                prop_assert!(a.eq_ignore_ascii_case(&b), "only case variants are the same login");
            }
        }
    }

    #[test]
    fn case_variants_share_every_file(name in "[a-z0-9][a-z0-9._@+=-]{0,60}", flips in proptest::collection::vec(any::<bool>(), 61)) {
        let variant: String = name
            .chars()
            .zip(flips.iter())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let (l1, l2) = (Login::parse(name.as_bytes()).unwrap(), Login::parse(variant.as_bytes()).unwrap());
        prop_assert_eq!(files(&l1), files(&l2));
    }

    #[test]
    fn normalisation_is_idempotent(raw in raw_name()) {
        if let Ok(login) = Login::parse(&raw) {
            prop_assert_eq!(Login::parse(login.as_str().as_bytes()), Ok(login.clone()));
        }
    }

    #[test]
    fn non_ascii_names_are_never_accepted(prefix in "[a-z]{0,10}", c in any::<char>().prop_filter("non-ASCII", |c| !c.is_ascii()), suffix in "[a-z@.]{0,10}") {
        let raw = format!("{prefix}{c}{suffix}");
        prop_assert!(Login::parse(raw.as_bytes()).is_err(), "{:?}", raw);
    }

    #[test]
    fn split_is_exactly_the_documented_rule(s in proptest::collection::vec(any::<u8>(), 0..80), digits in prop_oneof![Just(6usize), Just(8usize)]) {
        let ends_in_code = s.len() > digits && s[s.len() - digits..].iter().all(u8::is_ascii_digit);
        match split(&s, digits) {
            Some(p) => {
                prop_assert!(ends_in_code);
                prop_assert_eq!([p.password, p.code].concat(), s.clone());
                prop_assert_eq!(p.code.len(), digits);
                prop_assert!(!p.password.is_empty());
            }
            None => prop_assert!(!ends_in_code),
        }
    }

    #[test]
    fn split_then_join_gives_any_password_and_code_back(
        password in proptest::collection::vec(any::<u8>(), 1..100),
        code in "[0-9]{8}",
        digits in prop_oneof![Just(6usize), Just(8usize)],
    ) {
        let code = &code.as_bytes()[..digits];
        let s = [password.as_slice(), code].concat();
        let p = split(&s, digits).unwrap();
        prop_assert_eq!(p.password, password.as_slice());
        prop_assert_eq!(p.code, code);
    }

    #[test]
    fn decide_split_follows_the_rule_and_leaves_logins_without_mfa_alone(
        s in proptest::collection::vec(any::<u8>(), 0..80),
        digits in prop_oneof![Just(6u32), Just(8u32)],
    ) {
        let settings = Settings::default();
        let request = SplitRequest { supplied: &s, service: "imap", client: "192.0.2.1", now: 1_800_000_000 };
        prop_assert_eq!(decide_split(None, request, &settings), SplitDecision::NoMfa);
        let r = record(digits);
        match decide_split(Some(&r), request, &settings) {
            SplitDecision::Code { password_len, kind: CodeKind::Totp } => {
                let p = split(&s, digits as usize).expect("a TOTP split follows the rule");
                prop_assert_eq!(password_len, p.password.len());
            }
            // Other shapes end in a letter or are refused; never a split of a digit string.
            other => prop_assert!(
                split(&s, digits as usize).is_none(),
                "{:?} for a string that ends in a code", other
            ),
        }
    }
}

/// Names built to collide through the suffixes the store adds (`.toml`, `.state`, `.lock`,
/// `.tmp`) never share a file, even when an admin points `record_dir` and `state_dir` at the
/// same directory.
#[test]
fn suffix_games_never_share_a_file_even_in_one_directory() {
    let dir = PathBuf::from("/srv/mailmfa/both");
    let settings = Settings {
        record_dir: dir.clone(),
        state_dir: dir.clone(),
        ..Settings::default()
    };
    let s = FileStore::new(&settings, 0);
    let names = [
        "a",
        "a.toml",
        "a.state",
        "a.lock",
        "a.tmp",
        "a.state.tmp",
        "a.toml.tmp",
        "a.lock.state",
        "a.state.lock",
        "toml",
        "state",
        "pending",
    ];
    let mut seen = std::collections::BTreeMap::new();
    for name in names {
        let login = Login::parse(name.as_bytes()).unwrap();
        for path in [
            s.record_path(&login),
            s.state_path(&login),
            dir.join(format!("{login}.lock")),
            dir.join(format!(".{login}.state.tmp")),
            dir.join(format!(".{login}.toml.tmp")),
        ] {
            if let Some(other) = seen.insert(path.clone(), name) {
                panic!(
                    "{} is a file of both {other:?} and {name:?}",
                    path.display()
                );
            }
        }
    }
    // The pending enrolments live in a sub-directory, never a login's file.
    assert!(!seen.contains_key(&dir.join("pending")));
}
