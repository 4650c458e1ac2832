//! TEMPORARY: the account layer's signatures from the contract, so the panel compiles
//! before `mailmfa::account` lands. Deleted at the merge; nothing here runs.
#![allow(dead_code, unused_variables, missing_docs)]

use mailmfa::config::Settings;
use mailmfa::login::Login;
use mailmfa::record::Record;
use mailmfa::store::StoreError;
use zeroize::Zeroizing;

pub enum Face {
    Command,
    Panel,
    Api,
    Admin,
}
pub struct Actor<'a> {
    pub face: Face,
    pub client: Option<&'a str>,
}
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub euid: u32,
    pub now: u64,
    pub actor: Actor<'a>,
}
#[derive(Debug)]
pub enum CodeRefusal {
    Wrong { tries_left: u32 },
    WrongRecovery { tries_left: u32 },
    Used,
    Throttled { until: u64 },
}
#[derive(Debug)]
pub enum AccountError {
    NotOn,
    AlreadyOn { since: u64 },
    NoEnrolment,
    EnrolmentExpired { at: u64 },
    EnrolmentCancelled,
    EnabledMeanwhile,
    BadCodeFormat { digits: u32 },
    CodeRefused(CodeRefusal),
    Invalid(String),
    AppPasswordExists(String),
    NoSuchAppPassword(String),
    Store(StoreError),
    Random(String),
}
impl AccountError {
    pub fn code(&self) -> &'static str {
        unimplemented!()
    }
}
impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        unimplemented!()
    }
}
pub enum Proof<'a> {
    Code(&'a str),
    Force,
}
pub struct Status {
    pub on: bool,
    pub created: Option<u64>,
    pub label: Option<String>,
    pub digits: u32,
    pub period: u64,
    pub pending_expires: Option<u64>,
    pub app_passwords: usize,
    pub recovery_left: usize,
    pub recovery_total: usize,
    pub last_login: Option<u64>,
    pub throttled: bool,
}
pub fn status(ctx: &Ctx, login: &Login) -> Result<Status, AccountError> {
    unimplemented!()
}
pub struct Enrolment {
    pub record: Record,
    pub uri: Zeroizing<String>,
    pub key: Zeroizing<String>,
    pub expires_at: u64,
    pub replace: bool,
    pub replaced_pending: bool,
}
pub fn begin(
    ctx: &Ctx,
    login: &Login,
    label: Option<&str>,
    replace: Option<Proof>,
    client: &str,
) -> Result<Enrolment, AccountError> {
    unimplemented!()
}
pub fn confirm(ctx: &Ctx, login: &Login, typed: &str) -> Result<Record, AccountError> {
    unimplemented!()
}
pub fn pending(ctx: &Ctx, login: &Login) -> Result<Option<Enrolment>, AccountError> {
    unimplemented!()
}
pub fn disable(
    ctx: &Ctx,
    login: &Login,
    proof: Proof,
    client: &str,
) -> Result<Disabled, AccountError> {
    unimplemented!()
}
pub enum Disabled {
    Off,
    PendingOnly,
}
pub fn check_code(ctx: &Ctx, login: &Login, typed: &str, client: &str) -> Result<(), AccountError> {
    unimplemented!()
}
pub struct NewAppPassword {
    pub name: String,
    pub password: Zeroizing<String>,
    pub services: Vec<String>,
    pub created: u64,
    pub expires: Option<u64>,
}
pub struct AppPasswordInfo {
    pub name: String,
    pub services: Vec<String>,
    pub created: u64,
    pub expires: Option<u64>,
    pub last_used: Option<u64>,
    pub last_client: Option<String>,
}
pub fn add_app_password(
    ctx: &Ctx,
    login: &Login,
    name: &str,
    services: &[String],
    expires: Option<u64>,
) -> Result<NewAppPassword, AccountError> {
    unimplemented!()
}
pub fn list_app_passwords(ctx: &Ctx, login: &Login) -> Result<Vec<AppPasswordInfo>, AccountError> {
    unimplemented!()
}
pub fn revoke_app_password(ctx: &Ctx, login: &Login, name: &str) -> Result<(), AccountError> {
    unimplemented!()
}
pub fn parse_services(list: &str) -> Result<Vec<String>, AccountError> {
    unimplemented!()
}
pub fn new_recovery_codes(
    ctx: &Ctx,
    login: &Login,
) -> Result<Vec<Zeroizing<String>>, AccountError> {
    unimplemented!()
}
