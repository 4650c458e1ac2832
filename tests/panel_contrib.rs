// The User Panel's contrib files (issue 12 item 7): Debian's nginx runs
// contrib/nginx/mailmfa-panel.conf (its own prefix, a self-signed certificate made here with
// openssl, 127.0.0.1 ports) in front of a running panel, and a full sign-in goes through it
// with curl: the cookie is Secure, the security headers arrive, the owner's address reaches
// Dovecot and the module through X-Forwarded-For (a forged one is replaced); and
// contrib/systemd/mailmfa-panel.service passes `systemd-analyze verify` with its hardening.
// Owns: tests/panel_contrib.rs, contrib/nginx/**, contrib/systemd/**. Support: tests/panel/.

mod fixture;
mod integration;
mod panel;
mod servers;
mod skip;
mod sql;

use integration::{expect_line, PW};
use panel::{PanelOpts, PanelWorld, PANEL_PREREQS, PANEL_UID, SESSION_COOKIE};
use servers::{find_program, free_port, require_prereqs, TestDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The example as shipped.
fn contrib(rel: &str) -> PathBuf {
    fixture::repo().join("contrib").join(rel)
}

/// A running nginx with its own prefix; stopped (process group) at drop.
struct Nginx {
    child: Child,
    dir: TestDir,
    https: u16,
    _ports: [servers::PortLease; 2],
}

impl Nginx {
    /// Runs nginx with the example's server blocks, adapted: the panel's address, this
    /// test's certificate, HTTPS on 127.0.0.1:`https`, HTTP on another port, logs in the dir.
    fn start(panel: std::net::SocketAddr) -> Nginx {
        let dir = TestDir::new("nginx");
        let ports = [free_port(), free_port()];
        let (https, http) = (ports[0].port(), ports[1].port());
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let out = Command::new(find_program("openssl").unwrap())
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let example = std::fs::read_to_string(contrib("nginx/mailmfa-panel.conf")).unwrap();
        let adapted: String = example
            .lines()
            .filter(|l| !l.trim_start().starts_with("listen [::]"))
            .map(|l| {
                l.replace("listen 443 ssl", &format!("listen 127.0.0.1:{https} ssl"))
                    .replace("listen 80;", &format!("listen 127.0.0.1:{http};"))
                    .replace("127.0.0.1:8470", &panel.to_string())
                    .replace(
                        "/etc/letsencrypt/live/mail.example.com/fullchain.pem",
                        cert.to_str().unwrap(),
                    )
                    .replace(
                        "/etc/letsencrypt/live/mail.example.com/privkey.pem",
                        key.to_str().unwrap(),
                    )
                    .replace(
                        "/var/log/nginx/mailmfa-panel.access.log",
                        dir.join("access.log").to_str().unwrap(),
                    )
            })
            .map(|l| l + "\n")
            .collect();
        for (from, what) in [
            ("listen 127.0.0.1", "listen lines"),
            (cert.to_str().unwrap(), "certificate path"),
            (&panel.to_string(), "proxy_pass"),
        ] {
            assert!(
                adapted.contains(from),
                "the example's {what} changed:\n{example}"
            );
        }
        let site = dir.write("mailmfa-panel.conf", &adapted);
        let temp = dir.mkdir("temp", 0o700);
        panel::chown(&temp, PANEL_UID);
        let p = dir.path().display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\nuser nobody nogroup;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             client_body_temp_path {t}/body;\nproxy_temp_path {t}/proxy;\n\
             fastcgi_temp_path {t}/fastcgi;\nuwsgi_temp_path {t}/uwsgi;\nscgi_temp_path {t}/scgi;\n\
             include {site};\n}}\n",
            t = temp.display(),
            site = site.display()
        );
        let conf_path = dir.write("nginx.conf", &conf);
        let nginx = find_program("nginx").unwrap();
        let base = |cmd: &mut Command| {
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf_path);
        };
        let mut check = Command::new(&nginx);
        base(&mut check);
        let out = check.arg("-t").output().expect("nginx -t");
        assert!(
            out.status.success(),
            "nginx -t refused the example:\n{}\n{adapted}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cmd = Command::new(&nginx);
        base(&mut cmd);
        use std::os::unix::process::CommandExt;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("nginx.out")).unwrap())
            .process_group(0)
            .spawn()
            .expect("spawn nginx");
        let mut n = Nginx {
            child,
            dir,
            https,
            _ports: ports,
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], https));
        let waited =
            servers::wait_for_port(addr, Duration::from_secs(10), || match n.child.try_wait() {
                Ok(Some(s)) => Err(format!("nginx exited ({s})")),
                _ => Ok(()),
            });
        if let Err(e) = waited {
            panic!("{e}: {}", n.error_log());
        }
        n
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- nginx error.log ---\n{}", self.error_log());
        }
        servers::stop_group(&mut self.child, libc::SIGQUIT, Duration::from_secs(5));
    }
}

/// One curl call through nginx: from `src` (a 127.0.0.N address), verifying the test's
/// certificate, with a cookie jar; returns (status, headers lower-cased, body).
struct Curl<'a> {
    nginx: &'a Nginx,
    jar: PathBuf,
    src: &'a str,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }
}

impl Curl<'_> {
    fn run(&self, args: &[&str], path: &str) -> Reply {
        let headers = self.jar.with_extension("headers");
        let out = Command::new(find_program("curl").unwrap())
            .args([
                "-sS",
                "--http1.1",
                "--max-time",
                "30",
                "--interface",
                self.src,
            ])
            .arg("--cacert")
            .arg(self.nginx.cert())
            .arg("-c")
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar)
            .arg("-D")
            .arg(&headers)
            .args(args)
            .arg(self.nginx.url(path))
            .stdin(Stdio::null())
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl {args:?} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let head = std::fs::read_to_string(&headers).unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }
}

/// The nginx example in front of the panel: a full sign-in through it (page form, then the
/// API); the session cookie is Secure, HttpOnly, SameSite=Strict; the panel's security headers
/// and nginx's HSTS arrive; the owner's address reaches the module through X-Forwarded-For
/// even when the browser sends a forged one; plain HTTP only redirects.
#[test]
fn nginx_example_proxies_with_tls_and_secure_cookie() {
    let mut prereqs = PANEL_PREREQS.to_vec();
    prereqs.extend(["nginx", "curl"]);
    if !require_prereqs(&prereqs) {
        return;
    }
    let p = PanelWorld::start(&PanelOpts {
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Default::default()
    });
    let user = "proxied@example.com";
    let rec = p.mfa_owner(user);
    let nginx = Nginx::start(p.panel.addr);
    let tmp = tempfile::tempdir().unwrap();
    let curl = Curl {
        nginx: &nginx,
        jar: tmp.path().join("jar"),
        src: "127.0.0.9",
    };

    let page = curl.run(&[], "/sign-in");
    assert_eq!(page.status, 200, "{}", page.body);
    panel::assert_security_headers(
        &panel::Resp {
            status: page.status,
            headers: page.headers.clone(),
            body: String::new(),
        },
        "sign-in page through nginx",
    );
    assert!(
        page.header("strict-transport-security").is_some(),
        "no HSTS from nginx"
    );
    let csrf = panel::hidden_field(&page.body, "csrf").expect("csrf field");
    integration::step_margin(3);
    let password = format!("{PW}{}", panel::code(&rec, 0));
    let mark = p.syslog().mark();
    let r = curl.run(
        &[
            "-H",
            "X-Forwarded-For: 203.0.113.66",
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            &format!("login={user}"),
            "--data-urlencode",
            &format!("password={password}"),
        ],
        "/sign-in",
    );
    assert_eq!(r.status, 303, "sign-in through nginx: {}", r.body);
    assert_eq!(r.header("location"), Some("/mfa"), "{:?}", r.headers);
    let cookie = r.set_cookie(SESSION_COOKIE).expect("no session cookie");
    let attrs: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for a in ["secure", "httponly", "samesite=strict"] {
        assert!(attrs.contains(&a.to_string()), "cookie lacks {a}: {cookie}");
    }
    // The module saw the owner's address (nginx's $remote_addr), not the forged header.
    expect_line(
        p.syslog(),
        mark,
        user,
        "127.0.0.9",
        "verify",
        "accept",
        "ok",
    );
    let st = curl.run(&[], "/api/v1/mfa");
    assert_eq!(st.status, 200, "{}", st.body);
    let v: serde_json::Value = serde_json::from_str(&st.body).unwrap();
    assert_eq!(v["login"], user);
    assert_eq!(v["mfa"], "on");
    assert!(st
        .header("cache-control")
        .unwrap_or("")
        .contains("no-store"));
    let mfa = curl.run(&[], "/mfa");
    assert_eq!(mfa.status, 200);
    assert!(mfa.body.contains("mfa-status"), "{}", mfa.body);

    // Plain HTTP on the example's port 80 block only redirects to https.
    let http_port = nginx._ports[1].port();
    let out = Command::new(find_program("curl").unwrap())
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://127.0.0.1:{http_port}/sign-in"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("301 https://"), "plain HTTP: {text}");
}

/// The systemd unit passes `systemd-analyze verify` (with ExecStart pointing at the built
/// binary) and carries the hardening the issue asks for.
#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(contrib("systemd/mailmfa-panel.service")).unwrap();
    for line in [
        "User=mailmfa",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mailmfa/users /var/lib/mailmfa/panel -/var/spool/mailmfa",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == line),
            "the unit lacks `{line}`"
        );
    }
    let rw: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ReadWritePaths="))
        .collect();
    assert_eq!(rw.len(), 1, "ReadWritePaths: {rw:?}");
    if !require_prereqs(&["systemd-analyze"]) {
        return;
    }
    let analyze = find_program("systemd-analyze").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exec = Path::new(env!("CARGO_BIN_EXE_mailmfa"));
    let path = dir.path().join("mailmfa-panel.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/sbin/mailmfa-panel", exec.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let err = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("mailmfa-panel.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{err}",
        out.status
    );
}
