//! Records in a SQL database (`records = "sql"`): PostgreSQL or MariaDB/MySQL, secrets sealed
//! at rest. The wire clients are small blocking ones written for the module ([`postgres`],
//! [`mysql`]), behind one [`client::Client`] trait.

pub mod address;
pub mod client;
pub mod mysql;
