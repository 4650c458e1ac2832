// Minimal IMAP, POP3 and SMTP AUTH clients for the server harness, over plain TCP from a
// chosen 127.0.0.N source address (so each test client is a distinct remote IP to the server).

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::Duration;

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
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
            Err(e) => panic!("{}: read: {e}", self.what),
        }
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
}

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
        }
    }

    /// The server's greeting line.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// `LOGIN user password`, both sent as quoted strings (literals when needed).
    pub fn login(&mut self, user: &str, password: &str) -> Login {
        self.run(&[
            ImapArg::Atom("LOGIN"),
            ImapArg::Str(user),
            ImapArg::Str(password),
        ])
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

    fn read_until_tagged(&mut self, tag: &str) -> (Vec<String>, Login) {
        let mut untagged = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let Some(line) = self.conn.read_line() else {
                let last = untagged.last().cloned().unwrap_or_default();
                return (
                    untagged,
                    Login::No(format!("connection closed after: {last}")),
                );
            };
            if let Some(rest) = line.strip_prefix(&prefix) {
                let result = match rest.strip_prefix("OK") {
                    Some(text) => Login::Ok(text.trim_start().to_string()),
                    None => Login::No(rest.to_string()),
                };
                return (untagged, result);
            }
            untagged.push(line);
        }
    }
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
