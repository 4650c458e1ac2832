//! Pending enrolments: `record_dir/pending/<login>.toml`, written by `mailmfa enable --begin`,
//! never read by the module (a pending secret never turns MFA on).
