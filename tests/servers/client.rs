// Minimal IMAP, POP3 and SMTP AUTH clients for the server harness, over plain TCP from a
// chosen 127.0.0.N source address (so each test client is a distinct remote IP to the server).
// The IMAP client also reads a mailbox back (SELECT, message count, FETCH BODY.PEEK[] with
// literals, waiting for delivered mail), and `Mail` takes a fetched message apart.

use std::fmt;
use std::io::Read;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// How long a client waits for a server reply before failing the test.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a TCP connection to `dst` from `src` (any 127.0.0.0/8 address is local), with read and
/// write timeouts set. std cannot bind a client socket, so this does socket/bind/connect.
pub fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(dst) = dst else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket syscalls on a fresh fd that is closed on every error path or handed
    // to TcpStream, which then owns it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let local = sockaddr(src, 0);
        let remote = sockaddr(*dst.ip(), dst.port());
        let bound = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        if bound != 0 || libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            let err = io::Error::last_os_error();
            libc::close(fd);
            return Err(err);
        }
        let stream = TcpStream::from_raw_fd(fd);
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    }
}

/// The outcome of an IMAP or POP3 login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// Logged in; the server's text after the tag / `+OK`.
    Ok(String),
    /// Refused (NO/BAD/-ERR, or the server hung up); the server's text.
    No(String),
}

impl Login {
    /// True for `Login::Ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Login::Ok(_))
    }

    /// The server's text either way.
    pub fn text(&self) -> &str {
        match self {
            Login::Ok(t) | Login::No(t) => t,
        }
    }
}

/// A line-oriented connection shared by the three clients.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    what: String,
}

impl Conn {
    fn open(what: &str, src: Ipv4Addr, server: SocketAddr) -> Conn {
        let stream = connect_from(src, server)
            .unwrap_or_else(|e| panic!("{what}: connect {src} -> {server}: {e}"));
        let writer = stream.try_clone().expect("clone TcpStream");
        Conn {
            reader: BufReader::new(stream),
            writer,
            what: format!("{what} {src}->{server}"),
        }
    }

    /// One line without CRLF, or None at EOF.
    fn read_line(&mut self) -> Option<String> {
        self.read_line_bytes()
            .map(|buf| String::from_utf8_lossy(&buf).into_owned())
    }

    /// One line's bytes without CRLF, or None at EOF.
    fn read_line_bytes(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                Some(buf)
            }
            Err(e) => panic!("{}: read: {e}", self.what),
        }
    }

    /// Exactly `n` bytes (an IMAP literal); panics at EOF.
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader
            .read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("{}: read a {n}-byte literal: {e}", self.what));
        buf
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: write: {e}", self.what));
    }

    fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes());
    }

    /// Sends a goodbye (LOGOUT/QUIT) and drains the connection, ignoring errors: the server may
    /// already have hung up.
    fn close_with(mut self, line: &str) {
        let _ = self.writer.write_all(format!("{line}\r\n").as_bytes());
        let mut sink = Vec::new();
        while matches!(self.reader.read_until(b'\n', &mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
    }
}

/// An IMAP connection (greeting already read).
pub struct ImapClient {
    conn: Conn,
    next_tag: u32,
    greeting: String,
    /// The last login that succeeded, for messages.
    user: Option<String>,
    /// The selected mailbox and its message count as the server last reported it (`EXISTS`,
    /// less each `EXPUNGE` since).
    selected: Option<(String, u32)>,
}

/// One untagged IMAP response (`* ...`), its literals taken out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapUntagged {
    /// The response's text, continuation lines joined; each literal shows as its `{n}`.
    pub text: String,
    /// The literals' bytes, in order.
    pub literals: Vec<Vec<u8>>,
}

/// How often [`ImapClient::wait_for_messages`] asks the server (`NOOP`).
const MAIL_POLL: Duration = Duration::from_millis(50);

/// An IMAP command argument: an atom sent as is, or a string sent quoted (or as a literal when
/// it holds CR, LF, NUL or 8-bit bytes).
enum ImapArg<'a> {
    Atom(&'a str),
    Str(&'a str),
}

impl ImapClient {
    /// Connects from `src` and reads the `* OK` greeting.
    pub fn connect(server: SocketAddr, src: Ipv4Addr) -> ImapClient {
        let mut conn = Conn::open("IMAP", src, server);
        let greeting = conn.read_line().unwrap_or_default();
        assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting:?}");
        ImapClient {
            conn,
            next_tag: 1,
            greeting,
            user: None,
            selected: None,
        }
    }

    /// The server's greeting line.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// `LOGIN user password`, both sent as quoted strings (literals when needed).
    pub fn login(&mut self, user: &str, password: &str) -> Login {
        let result = self.run(&[
            ImapArg::Atom("LOGIN"),
            ImapArg::Str(user),
            ImapArg::Str(password),
        ]);
        if result.is_ok() {
            self.user = Some(user.to_string());
        }
        result
    }

    /// `SELECT mailbox` (quoted); the number of messages in it. Panics when refused.
    pub fn select(&mut self, mailbox: &str) -> u32 {
        let (untagged, result) = self.command_with_literals(&format!("SELECT {}", quoted(mailbox)));
        assert!(
            result.is_ok(),
            "IMAP SELECT {mailbox} as {}: {result:?}",
            self.who()
        );
        let count = untagged
            .iter()
            .rev()
            .find_map(|u| exists_count(&u.text))
            .unwrap_or_else(|| panic!("SELECT {mailbox}: no EXISTS in {untagged:?}"));
        self.selected = Some((mailbox.to_string(), count));
        count
    }

    /// The number of messages in the selected mailbox now: a `NOOP` (which makes the server
    /// look for new mail and report it with `EXISTS`), then the count last reported.
    pub fn message_count(&mut self) -> u32 {
        assert!(self.selected.is_some(), "message_count before SELECT");
        let (_, result) = self.command_with_literals("NOOP");
        assert!(result.is_ok(), "IMAP NOOP as {}: {result:?}", self.who());
        self.selected.as_ref().map(|(_, n)| *n).unwrap_or(0)
    }

    /// Waits until the selected mailbox holds at least `n` messages (asking with `NOOP` every
    /// 50 ms: delivery is asynchronous) and returns the count. Panics when `timeout` passes
    /// first, naming the mailbox, the login and how many messages are there. The timeout only
    /// bounds a hang; it is not a timing assertion.
    pub fn wait_for_messages(&mut self, n: u32, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.message_count();
            if count >= n {
                return count;
            }
            if Instant::now() >= deadline {
                let mailbox = self.selected.as_ref().map(|(m, _)| m.clone());
                panic!(
                    "timed out ({timeout:?}) waiting for {n} message(s) in {} of {}: {count} there",
                    mailbox.unwrap_or_default(),
                    self.who()
                );
            }
            std::thread::sleep(MAIL_POLL);
        }
    }

    /// The full text (headers and body, as stored: CRLF line ends) of message `seq` (1-based)
    /// of the selected mailbox, by `FETCH seq BODY.PEEK[]` (which leaves `\Seen` alone).
    pub fn fetch_message(&mut self, seq: u32) -> Vec<u8> {
        let (untagged, result) = self.command_with_literals(&format!("FETCH {seq} BODY.PEEK[]"));
        assert!(
            result.is_ok(),
            "IMAP FETCH {seq} BODY.PEEK[] as {}: {result:?}",
            self.who()
        );
        let prefix = format!("* {seq} FETCH ");
        untagged
            .into_iter()
            .find(|u| u.text.starts_with(&prefix) && u.text.contains("BODY[] {"))
            .and_then(|mut u| (u.literals.len() == 1).then(|| u.literals.remove(0)))
            .unwrap_or_else(|| panic!("FETCH {seq}: no BODY[] literal in the answer"))
    }

    /// Message `seq` of the selected mailbox, fetched ([`ImapClient::fetch_message`]) and
    /// taken apart.
    pub fn fetch_mail(&mut self, seq: u32) -> Mail {
        Mail::parse(self.fetch_message(seq))
    }

    /// Sends a raw command line (without tag); returns the untagged responses with their
    /// literals read (`FETCH ... BODY[]`), and the tagged result.
    pub fn command_with_literals(&mut self, command: &str) -> (Vec<ImapUntagged>, Login) {
        let tag = self.tag();
        self.conn.send_line(&format!("{tag} {command}"));
        self.read_responses(&tag)
    }

    /// The login (or "not logged in") for messages.
    fn who(&self) -> String {
        self.user
            .clone()
            .unwrap_or_else(|| "(not logged in)".into())
    }

    /// `AUTHENTICATE PLAIN` with the credentials as initial response (SASL-IR).
    pub fn authenticate_plain(&mut self, user: &str, password: &str) -> Login {
        let ir = base64(format!("\0{user}\0{password}").as_bytes());
        self.run(&[
            ImapArg::Atom("AUTHENTICATE"),
            ImapArg::Atom("PLAIN"),
            ImapArg::Atom(&ir),
        ])
    }

    /// Sends a raw command line (without tag) and returns (untagged lines, tagged result).
    pub fn command(&mut self, command: &str) -> (Vec<String>, Login) {
        let tag = self.tag();
        self.conn.send_line(&format!("{tag} {command}"));
        self.read_until_tagged(&tag)
    }

    /// `LOGOUT`, ignoring the reply (and a server that already hung up).
    pub fn logout(mut self) {
        let tag = self.tag();
        self.conn.close_with(&format!("{tag} LOGOUT"));
    }

    fn tag(&mut self) -> String {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    fn run(&mut self, args: &[ImapArg]) -> Login {
        let tag = self.tag();
        let mut line = tag.clone().into_bytes();
        for arg in args {
            line.push(b' ');
            match arg {
                ImapArg::Atom(a) => line.extend_from_slice(a.as_bytes()),
                ImapArg::Str(s) if is_quotable(s) => {
                    line.push(b'"');
                    for b in s.bytes() {
                        if b == b'"' || b == b'\\' {
                            line.push(b'\\');
                        }
                        line.push(b);
                    }
                    line.push(b'"');
                }
                ImapArg::Str(s) => {
                    // Synchronising literal: send {n}, wait for "+", then the bytes.
                    line.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
                    self.conn.send(&line);
                    line.clear();
                    match self.conn.read_line() {
                        Some(l) if l.starts_with('+') => {}
                        Some(l) => return Login::No(l),
                        None => return Login::No("connection closed".into()),
                    }
                    line.extend_from_slice(s.as_bytes());
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.conn.send(&line);
        self.read_until_tagged(&tag).1
    }

    /// The untagged responses' text (each literal shown as `{n}` and its bytes, lossily) and
    /// the tagged result.
    fn read_until_tagged(&mut self, tag: &str) -> (Vec<String>, Login) {
        let (untagged, result) = self.read_responses(tag);
        let lines = untagged
            .into_iter()
            .map(|u| {
                if u.literals.is_empty() {
                    return u.text;
                }
                // Put each literal back after its `{n}` marker.
                let mut out = String::new();
                let mut rest = u.text.as_str();
                for literal in &u.literals {
                    let marker = format!("{{{}}}", literal.len());
                    match rest.find(&marker) {
                        Some(at) => {
                            out.push_str(&rest[..at + marker.len()]);
                            out.push_str("\r\n");
                            out.push_str(&String::from_utf8_lossy(literal));
                            rest = &rest[at + marker.len()..];
                        }
                        None => break,
                    }
                }
                out.push_str(rest);
                out
            })
            .collect();
        (lines, result)
    }

    /// Reads responses until the one tagged `tag`: the untagged ones (literals read by their
    /// announced length, so a literal's lines are never taken for responses), and the result.
    /// Keeps the selected mailbox's count up to date from `EXISTS` and `EXPUNGE`.
    fn read_responses(&mut self, tag: &str) -> (Vec<ImapUntagged>, Login) {
        let mut untagged: Vec<ImapUntagged> = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let Some(first) = self.conn.read_line_bytes() else {
                let last = untagged.last().map(|u| u.text.clone()).unwrap_or_default();
                return (
                    untagged,
                    Login::No(format!("connection closed after: {last}")),
                );
            };
            let mut text = String::from_utf8_lossy(&first).into_owned();
            if let Some(rest) = text.strip_prefix(&prefix) {
                let result = match rest.strip_prefix("OK") {
                    Some(text) => Login::Ok(text.trim_start().to_string()),
                    None => Login::No(rest.to_string()),
                };
                return (untagged, result);
            }
            // A line ending in `{n}` announces n bytes, after which the response goes on.
            let mut literals = Vec::new();
            while let Some(n) = literal_length(&text) {
                literals.push(self.conn.read_exact(n));
                match self.conn.read_line_bytes() {
                    Some(more) => text.push_str(&String::from_utf8_lossy(&more)),
                    None => break,
                }
            }
            if let Some((_, count)) = self.selected.as_mut() {
                if let Some(n) = exists_count(&text) {
                    *count = n;
                } else if is_expunge(&text) {
                    *count = count.saturating_sub(1);
                }
            }
            untagged.push(ImapUntagged { text, literals });
        }
    }
}

/// `n` when `line` ends with an IMAP literal's announcement `{n}` (or `{n+}`).
fn literal_length(line: &str) -> Option<usize> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    line[open + 1..line.len() - 1]
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// `n` for an untagged `* n EXISTS`.
fn exists_count(text: &str) -> Option<u32> {
    let rest = text.strip_prefix("* ")?;
    let (n, word) = rest.split_once(' ')?;
    (word.eq_ignore_ascii_case("EXISTS"))
        .then(|| n.parse().ok())
        .flatten()
}

/// Whether `text` is an untagged `* n EXPUNGE`.
fn is_expunge(text: &str) -> bool {
    text.strip_prefix("* ")
        .and_then(|rest| rest.split_once(' '))
        .is_some_and(|(n, word)| {
            n.bytes().all(|b| b.is_ascii_digit()) && word.eq_ignore_ascii_case("EXPUNGE")
        })
}

/// `s` as an IMAP quoted string (for mailbox names; 7-bit only).
fn quoted(s: &str) -> String {
    assert!(is_quotable(s), "not quotable in IMAP: {s:?}");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// True if `s` can go in an IMAP quoted string (7-bit, no CR/LF/NUL).
fn is_quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n')
}

/// A POP3 connection (greeting already read).
pub struct Pop3Client {
    conn: Conn,
}

impl Pop3Client {
    /// Connects from `src` and reads the `+OK` greeting.
    pub fn connect(server: SocketAddr, src: Ipv4Addr) -> Pop3Client {
        let mut conn = Conn::open("POP3", src, server);
        let greeting = conn.read_line().unwrap_or_default();
        assert!(greeting.starts_with("+OK"), "POP3 greeting: {greeting:?}");
        Pop3Client { conn }
    }

    /// `USER user` then `PASS password` (POP3 has no quoting: the password is the rest of the
    /// line). Returns the first -ERR or the PASS reply.
    pub fn user_pass(&mut self, user: &str, password: &str) -> Login {
        match self.simple(&format!("USER {user}")) {
            Login::Ok(_) => self.simple(&format!("PASS {password}")),
            refused => refused,
        }
    }

    /// `AUTH PLAIN <initial response>`.
    pub fn auth_plain(&mut self, user: &str, password: &str) -> Login {
        let ir = base64(format!("\0{user}\0{password}").as_bytes());
        self.simple(&format!("AUTH PLAIN {ir}"))
    }

    /// `QUIT`, ignoring the reply (and a server that already hung up).
    pub fn quit(self) {
        self.conn.close_with("QUIT");
    }

    fn simple(&mut self, line: &str) -> Login {
        self.conn.send_line(line);
        match self.conn.read_line() {
            Some(reply) => match reply.strip_prefix("+OK") {
                Some(text) => Login::Ok(text.trim_start().to_string()),
                None => Login::No(reply),
            },
            None => Login::No("connection closed".into()),
        }
    }
}

/// An SMTP reply: the code and the text of all its lines (joined with '\n').
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpReply {
    /// 235 = authenticated, 535 = credentials refused, 334 = continue, ...
    pub code: u16,
    /// The reply text without the codes.
    pub text: String,
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// An SMTP connection (220 greeting already read).
pub struct SmtpClient {
    conn: Conn,
}

impl SmtpClient {
    /// Connects from `src` and reads the 220 greeting.
    pub fn connect(server: SocketAddr, src: Ipv4Addr) -> SmtpClient {
        let mut client = SmtpClient {
            conn: Conn::open("SMTP", src, server),
        };
        let greeting = client.reply();
        assert_eq!(greeting.code, 220, "SMTP greeting: {greeting}");
        client
    }

    /// `EHLO name`.
    pub fn ehlo(&mut self, name: &str) -> SmtpReply {
        self.command(&format!("EHLO {name}"))
    }

    /// `AUTH PLAIN <initial response>`.
    pub fn auth_plain(&mut self, user: &str, password: &str) -> SmtpReply {
        let ir = base64(format!("\0{user}\0{password}").as_bytes());
        self.command(&format!("AUTH PLAIN {ir}"))
    }

    /// `AUTH LOGIN`, then the user name and the password at the two 334 prompts.
    pub fn auth_login(&mut self, user: &str, password: &str) -> SmtpReply {
        let r = self.command("AUTH LOGIN");
        if r.code != 334 {
            return r;
        }
        let r = self.command(&base64(user.as_bytes()));
        if r.code != 334 {
            return r;
        }
        self.command(&base64(password.as_bytes()))
    }

    /// Sends one command line and reads its (possibly multi-line) reply.
    pub fn command(&mut self, line: &str) -> SmtpReply {
        self.conn.send_line(line);
        self.reply()
    }

    /// `QUIT`, ignoring the reply (and a server that already hung up).
    pub fn quit(self) {
        self.conn.close_with("QUIT");
    }

    fn reply(&mut self) -> SmtpReply {
        let mut text = Vec::new();
        loop {
            let Some(line) = self.conn.read_line() else {
                return SmtpReply {
                    code: 0,
                    text: format!("connection closed after: {}", text.join("\n")),
                };
            };
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            let Some(code) = code else {
                panic!("{}: bad SMTP reply line {line:?}", self.conn.what);
            };
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return SmtpReply {
                    code,
                    text: text.join("\n"),
                };
            }
        }
    }
}

/// One IMAP `LOGIN` from `src`, then `LOGOUT`.
pub fn imap_login(server: SocketAddr, src: Ipv4Addr, user: &str, password: &str) -> Login {
    let mut client = ImapClient::connect(server, src);
    let result = client.login(user, password);
    client.logout();
    result
}

/// Connects from `src`, logs in as `user` (panics, with the server's answer, when refused)
/// and selects INBOX: ready for [`ImapClient::wait_for_messages`] and
/// [`ImapClient::fetch_mail`]. One login: a mailbox with MFA gets `password` + a code once.
pub fn imap_open_inbox(
    server: SocketAddr,
    src: Ipv4Addr,
    user: &str,
    password: &str,
) -> ImapClient {
    let mut client = ImapClient::connect(server, src);
    let login = client.login(user, password);
    assert!(login.is_ok(), "IMAP LOGIN as {user} from {src}: {login:?}");
    client.select("INBOX");
    client
}

/// Logs in as `user` from `src`, waits (up to `timeout`) until INBOX holds at least `n`
/// messages, fetches all of them (oldest first) and logs out.
pub fn imap_read_inbox(
    server: SocketAddr,
    src: Ipv4Addr,
    user: &str,
    password: &str,
    n: u32,
    timeout: Duration,
) -> Vec<Mail> {
    let mut client = imap_open_inbox(server, src, user, password);
    let count = client.wait_for_messages(n, timeout);
    let mails = (1..=count).map(|seq| client.fetch_mail(seq)).collect();
    client.logout();
    mails
}

/// A message as read back over IMAP: its raw bytes, split into header and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The whole message as the server sent it (CRLF line ends).
    pub raw: Vec<u8>,
    /// Where the body starts in `raw` (after the empty line ending the header).
    body_at: usize,
}

impl Mail {
    /// Splits `raw` at the first empty line (CRLF CRLF, or LF LF).
    pub fn parse(raw: Vec<u8>) -> Mail {
        let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
        let body_at = match (crlf, lf) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(raw.len()),
        };
        Mail { raw, body_at }
    }

    /// The header fields in order, as (name, value) with folded lines unfolded and the value
    /// trimmed; not decoded (see [`Mail::header_decoded`]).
    pub fn headers(&self) -> Vec<(String, String)> {
        let text = String::from_utf8_lossy(&self.raw[..self.body_at]);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        fields
    }

    /// Every value of header `name` (any letter case), in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// The first value of header `name` (any letter case), unfolded, not decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// The first value of header `name` with RFC 2047 encoded words (`=?utf-8?B?...?=`,
    /// `=?utf-8?Q?...?=`; UTF-8 and US-ASCII only) decoded.
    pub fn header_decoded(&self, name: &str) -> Option<String> {
        self.header(name).map(|v| decode_words(&v))
    }

    /// The body's raw bytes (still in its transfer encoding).
    pub fn body_raw(&self) -> &[u8] {
        &self.raw[self.body_at..]
    }

    /// The body as text: decoded by its `Content-Transfer-Encoding` (7bit, 8bit, binary,
    /// quoted-printable or base64), read as UTF-8 (panics if it is not), CRLF made LF.
    pub fn body_text(&self) -> String {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_else(|| "7bit".into())
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "7bit" | "8bit" | "binary" => self.body_raw().to_vec(),
            "quoted-printable" => decode_quoted_printable(self.body_raw(), false),
            "base64" => decode_base64(self.body_raw()),
            other => panic!("body in an unknown transfer encoding {other:?}"),
        };
        String::from_utf8(bytes)
            .unwrap_or_else(|e| panic!("body is not UTF-8: {e}"))
            .replace("\r\n", "\n")
    }
}

/// Decodes the RFC 2047 encoded words in a header value (UTF-8 / US-ASCII charsets);
/// whitespace between two encoded words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let decoded = rest[start + 2..]
            .split_once('?')
            .and_then(|(charset, tail)| {
                let (enc, tail) = tail.split_once('?')?;
                let (text, after) = tail.split_once("?=")?;
                let charset = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
                if charset != "utf-8" && charset != "us-ascii" {
                    panic!("encoded word in charset {charset:?}: {value}");
                }
                let bytes = match enc {
                    "B" | "b" => decode_base64(text.as_bytes()),
                    "Q" | "q" => decode_quoted_printable(text.as_bytes(), true),
                    _ => return None,
                };
                Some((String::from_utf8_lossy(&bytes).into_owned(), after))
            });
        let between = &rest[..start];
        match decoded {
            Some((text, after)) => {
                if !(after_word && between.trim().is_empty()) {
                    out.push_str(between);
                }
                out.push_str(&text);
                rest = after;
                after_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Quoted-printable (RFC 2045) decoding; `q_word`: the `Q` of an encoded word (`_` = space).
fn decode_quoted_printable(data: &[u8], q_word: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'=' if data.get(i + 1..i + 3) == Some(b"\r\n") => i += 3,
            b'=' if data.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => {
                let pair = data
                    .get(i + 1..i + 3)
                    .and_then(|p| Some(hex(p[0])? << 4 | hex(p[1])?));
                match pair {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if q_word => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 decoding, skipping whitespace and stopping at padding; panics on any
/// other byte outside the alphabet.
fn decode_base64(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            other => panic!("byte {other:#04x} in base64 text"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// One POP3 `USER`/`PASS` from `src`, then `QUIT`.
pub fn pop3_login(server: SocketAddr, src: Ipv4Addr, user: &str, password: &str) -> Login {
    let mut client = Pop3Client::connect(server, src);
    let result = client.user_pass(user, password);
    client.quit();
    result
}

/// One SMTP `EHLO` + `AUTH PLAIN` from `src`, then `QUIT`; the AUTH reply.
pub fn smtp_auth_plain(server: SocketAddr, src: Ipv4Addr, user: &str, password: &str) -> SmtpReply {
    let mut client = SmtpClient::connect(server, src);
    let ehlo = client.ehlo("client.test");
    assert_eq!(ehlo.code, 250, "EHLO: {ehlo}");
    let result = client.auth_plain(user, password);
    client.quit();
    result
}

/// One SMTP `EHLO` + `AUTH LOGIN` from `src`, then `QUIT`; the final AUTH reply.
pub fn smtp_auth_login(server: SocketAddr, src: Ipv4Addr, user: &str, password: &str) -> SmtpReply {
    let mut client = SmtpClient::connect(server, src);
    let ehlo = client.ehlo("client.test");
    assert_eq!(ehlo.code, 250, "EHLO: {ehlo}");
    let result = client.auth_login(user, password);
    client.quit();
    result
}

/// Standard base64 with padding (RFC 4648), as SASL wants.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
