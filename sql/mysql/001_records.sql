-- mailmfa records in MariaDB/MySQL, schema version 1 (docs/sql.md). Applied by
-- `mailmfa db init` / `mailmfa db migrate`.
--
-- One row per login with MFA. The record (secret, algorithm, digits, period, label, the
-- hashes of app passwords and recovery codes) is the same text as a record file, sealed with
-- ChaCha20-Poly1305 under a key of `sql_key_file`, the login and the key id bound as
-- associated data: the table holds no secret in clear, and a row copied to another login
-- does not open. The login compares byte for byte (utf8mb4_bin), as the module's files do.
CREATE TABLE mailmfa_schema (
    version INTEGER NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO mailmfa_schema (version) VALUES (1);

CREATE TABLE mailmfa_record (
    login   VARCHAR(240) NOT NULL PRIMARY KEY,  -- the login as the module normalises it
    key_id  INTEGER NOT NULL,                   -- the sql_key_file line that sealed `sealed`
    sealed  TEXT NOT NULL,                      -- nonce, ciphertext and tag, hex
    created BIGINT NOT NULL,                    -- Unix time MFA was confirmed
    updated BIGINT NOT NULL                     -- Unix time of the last write
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
