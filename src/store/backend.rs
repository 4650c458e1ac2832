//! The store the settings name (`state = "files"` or `"redis"`), as one type the module, the
//! command and the panel hold. An enum rather than a boxed trait object: the file path, the
//! one almost every installation runs, pays one branch and no allocation.

use super::files::FileStore;
use super::redis::RedisStore;
use super::secure::Walked;
use super::sql::SqlStore;
use super::{StateLoad, Store, StoreError};
use crate::config::{RecordsBackend, Settings, StateBackend};
use crate::login::Login;
use crate::record::Record;
use crate::state::State;
use std::sync::Arc;

/// The configured store.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Records and state as files.
    Files(FileStore),
    /// Records as files, state on Redis/Valkey.
    Redis(RedisStore),
    /// Records in SQL, state in one of the others.
    Sql(SqlStore),
}

impl Backend {
    /// The store `settings` name, for a process running as `euid`.
    pub fn open(settings: &Settings, euid: u32) -> Backend {
        Backend::open_in(settings, euid, None)
    }

    /// [`Backend::open`] for one login, which skips the directories `walked` vouches for
    /// (see [`Walked`]).
    pub fn open_in(settings: &Settings, euid: u32, walked: Option<Arc<Walked>>) -> Backend {
        let state = match settings.state {
            StateBackend::Files => Backend::Files(FileStore::new_in(settings, euid, walked)),
            StateBackend::Redis => Backend::Redis(RedisStore::new_in(settings, euid, walked)),
        };
        match settings.records {
            RecordsBackend::Files => state,
            RecordsBackend::Sql => Backend::Sql(SqlStore::new(settings, euid, state)),
        }
    }

    /// The file store: of the records and state, of the records only (Redis state), or of
    /// nothing but the state's lock files (SQL records with Redis state).
    pub fn files(&self) -> &FileStore {
        match self {
            Backend::Files(files) => files,
            Backend::Redis(redis) => redis.files(),
            Backend::Sql(sql) => sql.state().files(),
        }
    }

    /// Removes the user's state only (the record is the caller's).
    pub fn remove_state(&self, login: &Login) -> Result<(), StoreError> {
        match self {
            Backend::Files(files) => files.remove_state(login),
            Backend::Redis(redis) => redis.remove_state(login),
            Backend::Sql(sql) => sql.state().remove_state(login),
        }
    }

    fn inner(&self) -> &dyn Store {
        match self {
            Backend::Files(files) => files,
            Backend::Redis(redis) => redis,
            Backend::Sql(sql) => sql,
        }
    }
}

impl Store for Backend {
    fn read_record(&self, login: &Login) -> Result<Option<Record>, StoreError> {
        self.inner().read_record(login)
    }

    fn update_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        self.inner().update_state(login, decide)
    }

    fn decide_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        self.inner().decide_state(login, decide)
    }

    fn read_state(&self, login: &Login) -> Result<Option<State>, StoreError> {
        self.inner().read_state(login)
    }

    fn write_record(&self, login: &Login, record: &Record) -> Result<(), StoreError> {
        self.inner().write_record(login, record)
    }

    fn remove_user(&self, login: &Login) -> Result<bool, StoreError> {
        self.inner().remove_user(login)
    }

    fn list_logins(&self) -> Result<Vec<Login>, StoreError> {
        self.inner().list_logins()
    }
}
