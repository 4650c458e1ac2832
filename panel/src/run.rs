//! Start-up: the command line, the checks before serving (never root, the config, the
//! admin token file, the panel's state directory), the listening socket, then the server.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use zeroize::Zeroizing;

use crate::accounts::Accounts;
use crate::app::App;
use crate::{config, events, server};

/// Exit status when started as root (EX_NOPERM).
pub const EXIT_ROOT: u8 = 77;
/// Exit status for a bad command line (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit status for a bad config (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit status when the listening socket cannot be made (EX_OSERR).
pub const EXIT_OS: u8 = 71;

const HELP: &str = "\
mailmfa-panel: the mailmfa User Panel (MFA pages and JSON API for mailbox owners)

Usage: mailmfa-panel [--config PATH] [--listen ADDR:PORT]

  --config PATH      mailmfa.toml to read (default /etc/mailmfa/mailmfa.toml); the panel's
                     settings are its [panel] table
  --listen ADDR:PORT listen here instead of [panel] listen (port 0: any free port)
  --help             this text

Runs as an unprivileged account (never root). The first line on standard output is
`listening on http://ADDR:PORT`. SIGTERM stops it gracefully.
";

/// The command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// `--config`.
    pub config: PathBuf,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
}

/// Parses the arguments (without the program name); `Ok(None)` for `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        config: PathBuf::from(mailmfa::config::DEFAULT_CONFIG_PATH),
        listen: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{name} needs a value"))
        };
        match name {
            "--help" | "-h" => return Ok(None),
            "--config" => parsed.config = PathBuf::from(value()?),
            "--listen" => {
                let v = value()?;
                parsed.listen = Some(
                    v.parse()
                        .map_err(|_| format!("--listen needs ADDR:PORT, not `{v}`"))?,
                );
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(Some(parsed))
}

/// The whole program.
pub fn main(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mailmfa-panel: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let euid = mailmfa::pam::sys::effective_uid();
    if euid == 0 {
        eprintln!(
            "mailmfa-panel: refusing to run as root. Start it as the unprivileged account that owns the \
             record directory (record_owner in mailmfa.toml, e.g. `mailmfa`): systemd User=mailmfa, or \
             `setpriv --reuid=mailmfa --regid=mailmfa --init-groups mailmfa-panel ...`."
        );
        return ExitCode::from(EXIT_ROOT);
    }
    let loaded = match config::load(&args.config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mailmfa-panel: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut panel = loaded.panel;
    if let Some(listen) = args.listen {
        panel.listen = listen;
    }
    let admin_token = match &panel.admin_token_file {
        Some(path) => match read_token(path, euid) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("mailmfa-panel: admin_token_file {}: {e}", path.display());
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => None,
    };
    if let Err(e) = state_dir(&panel.state_dir, euid) {
        eprintln!(
            "mailmfa-panel: state_dir {}: {e}",
            panel.state_dir.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut settings = loaded.settings;
    settings.state_dir = panel.state_dir.clone();
    let accounts = Accounts::new(settings, euid);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mailmfa-panel: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_OS);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(panel.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("mailmfa-panel: cannot listen on {}: {e}", panel.listen);
                return ExitCode::from(EXIT_OS);
            }
        };
        let local = listener.local_addr().unwrap_or(panel.listen);
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{local}");
        let _ = out.flush();
        events::service(&format!("event=start listen={local} uid={euid}"));
        let app = App::new(panel, accounts, admin_token);
        server::serve(listener, app).await;
        ExitCode::SUCCESS
    })
}

/// Reads the admin token: a regular file of ours, not readable by others, 32+ characters.
fn read_token(path: &Path, euid: u32) -> Result<Zeroizing<String>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("must be a regular file (not a symlink)".to_string());
    }
    if meta.uid() != euid {
        return Err(format!(
            "must be owned by the panel's account (uid {euid}), not uid {}",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "must not be readable by others: chmod 0600 {}",
            path.display()
        ));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| e.to_string())?);
    let token = Zeroizing::new(text.trim().to_string());
    if token.len() < 32 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the token must be one word of at least 32 characters (e.g. `openssl rand -hex 32`)"
                .to_string(),
        );
    }
    Ok(token)
}

/// The panel's state directory: made (0700) if missing; must be ours and private.
fn state_dir(path: &Path, euid: u32) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|e| format!("cannot create it: {e}")),
        Err(e) => Err(e.to_string()),
        Ok(meta) if !meta.file_type().is_dir() => {
            Err("must be a directory (not a symlink)".to_string())
        }
        Ok(meta) if meta.uid() != euid => Err(format!(
            "must be owned by the panel's account (uid {euid}), not uid {}: chown it",
            meta.uid()
        )),
        Ok(meta) if meta.permissions().mode() & 0o022 != 0 => Err(format!(
            "must not be writable by others: chmod 0700 {}",
            path.display()
        )),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_are_parsed() {
        let a = parse_args(&args(&["--config", "/x.toml", "--listen=127.0.0.1:0"]))
            .unwrap()
            .unwrap();
        assert_eq!(a.config, PathBuf::from("/x.toml"));
        assert_eq!(a.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(parse_args(&args(&["--help"])).unwrap(), None);
        assert!(parse_args(&args(&["--listen", "nowhere"])).is_err());
        assert!(parse_args(&args(&["--config"])).is_err());
        assert!(parse_args(&args(&["serve"])).is_err());
    }
}
