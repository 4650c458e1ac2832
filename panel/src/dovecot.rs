//! Signing in through the mail server's own check: Dovecot's auth-client protocol on a UNIX
//! socket (`service auth { unix_listener ... }`).
//!
//! One connection per sign-in:
//! ```text
//! C: VERSION\t1\t2            S: VERSION\t1\t2, MECH..., SPID, CUID, COOKIE, DONE
//! C: CPID\t<pid>
//! C: AUTH\t1\tPLAIN\tservice=<s>\tsecured\trip=<ip>\tresp=<base64(\0login\0password)>
//! S: OK\t1\tuser=<name>...  |  FAIL\t1\t[temp]...  |  CONT\t1\t... (not expected: refused)
//! ```
//! Dovecot runs its passdb (PAM with pam_mailmfa.so, SQL, LDAP...) with `rip` as the remote
//! address, so the module checks, consumes and throttles the code exactly as for IMAP. The
//! password is held in zeroizing buffers and wiped after the write. Every step has a timeout;
//! a server that does not answer in time is "unavailable", never a success.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// Longest wait for the whole exchange (Dovecot delays failures by `auth_failure_delay`).
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Longest line accepted from the server.
const MAX_LINE: usize = 16 * 1024;
/// Most handshake lines before DONE.
const MAX_HANDSHAKE_LINES: usize = 64;

/// Dovecot's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The passdb accepted; `user` is Dovecot's name for the mailbox (`user=`), if it said.
    Ok { user: Option<String> },
    /// Refused (wrong password, wrong code, unknown mailbox, throttled by the module...).
    Fail,
    /// Dovecot could not decide (`temp`): the passdb or the module's storage is unreachable.
    TempFail,
}

/// Dovecot could not be asked.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the mail server's authentication is unavailable: {}",
            self.0
        )
    }
}

/// What one sign-in asks.
pub struct Request<'a> {
    /// The auth-client socket.
    pub socket: &'a Path,
    /// `service=`.
    pub service: &'a str,
    /// The browser's address (`rip=`).
    pub client: IpAddr,
    /// The typed login.
    pub login: &'a str,
    /// The typed password (+ code).
    pub password: &'a str,
    /// Sends `no-penalty`: Dovecot's auth penalty for `rip` is neither applied nor raised.
    pub no_penalty: bool,
}

/// Asks Dovecot whether `login` / `password` sign in, from `client`.
pub async fn authenticate(req: &Request<'_>) -> Result<Answer, Unavailable> {
    match tokio::time::timeout(TIMEOUT, exchange(req)).await {
        Ok(result) => result,
        Err(_) => Err(Unavailable("no answer in time".to_string())),
    }
}

async fn exchange(req: &Request<'_>) -> Result<Answer, Unavailable> {
    let stream = UnixStream::connect(req.socket)
        .await
        .map_err(|e| Unavailable(format!("cannot connect to {}: {e}", req.socket.display())))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let io = |e: std::io::Error| Unavailable(e.to_string());

    write
        .write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes())
        .await
        .map_err(io)?;
    handshake(&mut read).await?;

    let line = auth_line(req)?;
    write.write_all(line.as_bytes()).await.map_err(io)?;
    drop(line);
    let answer = read_line(&mut read).await?;
    parse_answer(&answer)
}

/// Reads the server's handshake up to `DONE`, checking its major version.
async fn handshake<R: AsyncBufReadExt + Unpin>(read: &mut R) -> Result<(), Unavailable> {
    let mut saw_version = false;
    for _ in 0..MAX_HANDSHAKE_LINES {
        let line = read_line(read).await?;
        let mut fields = line.split('\t');
        match fields.next() {
            Some("VERSION") => {
                if fields.next() != Some("1") {
                    return Err(Unavailable(format!("unsupported protocol: {line}")));
                }
                saw_version = true;
            }
            Some("DONE") if saw_version => return Ok(()),
            Some("DONE") => return Err(Unavailable("no VERSION before DONE".to_string())),
            _ => {}
        }
    }
    Err(Unavailable("handshake too long".to_string()))
}

/// The AUTH line; the password only inside its base64, in wiped buffers.
fn auth_line(req: &Request<'_>) -> Result<Zeroizing<String>, Unavailable> {
    if req.login.contains('\0') || req.password.contains('\0') {
        // PLAIN cannot carry a NUL inside a field; such a login is simply refused upstream.
        return Err(Unavailable("a NUL in the login or password".to_string()));
    }
    let mut plain = Zeroizing::new(Vec::with_capacity(req.login.len() + req.password.len() + 2));
    plain.push(0);
    plain.extend_from_slice(req.login.as_bytes());
    plain.push(0);
    plain.extend_from_slice(req.password.as_bytes());
    let resp = Zeroizing::new(STANDARD.encode(&plain[..]));
    let mut line = Zeroizing::new(String::with_capacity(resp.len() + 128));
    line.push_str("AUTH\t1\tPLAIN\tservice=");
    line.push_str(req.service);
    line.push_str("\tsecured\trip=");
    line.push_str(&req.client.to_string());
    if req.no_penalty {
        line.push_str("\tno-penalty");
    }
    line.push_str("\tresp=");
    line.push_str(&resp);
    line.push('\n');
    Ok(line)
}

/// One line without its `\n`, bounded.
async fn read_line<R: AsyncBufReadExt + Unpin>(read: &mut R) -> Result<String, Unavailable> {
    let mut buf = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(&mut *read, MAX_LINE as u64 + 1);
    let n = limited
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| Unavailable(e.to_string()))?;
    if n == 0 {
        return Err(Unavailable("the server closed the connection".to_string()));
    }
    if buf.last() != Some(&b'\n') {
        return Err(Unavailable("a line too long or cut short".to_string()));
    }
    buf.pop();
    String::from_utf8(buf).map_err(|_| Unavailable("a line that is not UTF-8".to_string()))
}

/// Reads the answer to AUTH id 1.
pub fn parse_answer(line: &str) -> Result<Answer, Unavailable> {
    let mut fields = line.split('\t');
    let verb = fields.next().unwrap_or("");
    if fields.next() != Some("1") {
        return Err(Unavailable(format!(
            "an answer to another request: {}",
            first_word(line)
        )));
    }
    let args: Vec<&str> = fields.collect();
    match verb {
        "OK" => Ok(Answer::Ok {
            user: args
                .iter()
                .find_map(|a| a.strip_prefix("user="))
                .map(unescape),
        }),
        "FAIL" if args.contains(&"temp") => Ok(Answer::TempFail),
        "FAIL" => Ok(Answer::Fail),
        // PLAIN with an initial response needs no continuation: something else is going on.
        "CONT" => Ok(Answer::Fail),
        _ => Err(Unavailable(format!(
            "unexpected answer {}",
            first_word(line)
        ))),
    }
}

fn first_word(line: &str) -> String {
    line.split('\t')
        .next()
        .unwrap_or("")
        .chars()
        .take(16)
        .collect()
}

/// Undoes Dovecot's tab escaping (`\001` + `1`/`t`/`r`/`n`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1}' {
            match chars.next() {
                Some('1') => out.push('\u{1}'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    #[test]
    fn answers_are_parsed() {
        assert_eq!(
            parse_answer("OK\t1\tuser=alice@example.com\toriginal_user=Alice").unwrap(),
            Answer::Ok {
                user: Some("alice@example.com".into())
            }
        );
        assert_eq!(parse_answer("OK\t1").unwrap(), Answer::Ok { user: None });
        assert_eq!(parse_answer("FAIL\t1\tuser=alice").unwrap(), Answer::Fail);
        assert_eq!(parse_answer("FAIL\t1\ttemp").unwrap(), Answer::TempFail);
        assert_eq!(parse_answer("CONT\t1\t").unwrap(), Answer::Fail);
        assert!(parse_answer("OK\t2\tuser=bob").is_err());
        assert!(parse_answer("WHAT\t1").is_err());
        assert!(parse_answer("").is_err());
    }

    #[test]
    fn escaped_user_names_are_unescaped() {
        assert_eq!(unescape("a\u{1}tb\u{1}1c"), "a\tb\u{1}c");
    }

    /// A one-shot fake auth server: sends `greeting`, reads the client's lines up to AUTH,
    /// answers `answer`; returns what the client sent.
    async fn fake(
        greeting: &'static str,
        answer: &'static str,
    ) -> (tempdir::Dir, tokio::task::JoinHandle<String>) {
        let dir = tempdir::Dir::new();
        let listener = UnixListener::bind(dir.path().join("auth")).unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(greeting.as_bytes()).await.unwrap();
            if answer.is_empty() {
                return String::new();
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&got).contains("AUTH") || !got.ends_with(b"\n") {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        (dir, task)
    }

    const GREETING: &str = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t12\nCUID\t3\nCOOKIE\tabc\nDONE\n";

    fn request<'a>(socket: &'a Path) -> Request<'a> {
        Request {
            socket,
            service: "mailmfa-panel",
            client: "192.0.2.7".parse().unwrap(),
            login: "alice@example.com",
            password: "pw\t123456",
            no_penalty: false,
        }
    }

    #[tokio::test]
    async fn a_sign_in_sends_plain_with_the_client_address() {
        let (dir, task) = fake(GREETING, "OK\t1\tuser=alice@example.com\n").await;
        let socket = dir.path().join("auth");
        let answer = authenticate(&request(&socket)).await.unwrap();
        assert_eq!(
            answer,
            Answer::Ok {
                user: Some("alice@example.com".into())
            }
        );
        let sent = task.await.unwrap();
        let lines: Vec<&str> = sent.lines().collect();
        assert_eq!(lines[0], "VERSION\t1\t2");
        assert!(lines[1].starts_with("CPID\t"));
        let resp = STANDARD.encode(b"\0alice@example.com\0pw\t123456");
        assert_eq!(
            lines[2],
            format!("AUTH\t1\tPLAIN\tservice=mailmfa-panel\tsecured\trip=192.0.2.7\tresp={resp}")
        );
    }

    #[tokio::test]
    async fn fail_and_temp_fail_are_told_apart() {
        let (dir, _task) = fake(GREETING, "FAIL\t1\tuser=alice\n").await;
        let socket = dir.path().join("auth");
        assert_eq!(authenticate(&request(&socket)).await.unwrap(), Answer::Fail);
        let (dir, _task) = fake(GREETING, "FAIL\t1\ttemp\n").await;
        let socket = dir.path().join("auth");
        assert_eq!(
            authenticate(&request(&socket)).await.unwrap(),
            Answer::TempFail
        );
    }

    #[tokio::test]
    async fn a_wrong_version_or_a_closed_socket_is_unavailable() {
        let (dir, _task) = fake("VERSION\t2\t0\nDONE\n", "OK\t1\n").await;
        let socket = dir.path().join("auth");
        assert!(authenticate(&request(&socket)).await.is_err());
        let (dir, _task) = fake("VERSION\t1\t2\n", "").await;
        let socket = dir.path().join("auth");
        // The fake never sends DONE and closes: unavailable, not OK.
        assert!(authenticate(&request(&socket)).await.is_err());
        assert!(authenticate(&request(Path::new("/nonexistent/auth")))
            .await
            .is_err());
    }

    /// A temporary directory without another crate.
    mod tempdir {
        use std::path::{Path, PathBuf};
        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).unwrap();
                let name = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
                let path = std::env::temp_dir().join(format!("mailmfa-panel-test-{name}"));
                std::fs::create_dir(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
