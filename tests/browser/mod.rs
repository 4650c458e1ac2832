// A small blocking WebDriver client for the User Panel's browser tests: starts Debian's
// `chromedriver` on a leased 127.0.0.1 port, opens a session with headless Chromium
// (/usr/bin/chromium, its own profile dir), and offers what the tests need: navigate, find by
// CSS selector, type, click, text, attribute, current URL, page source, screenshots (PNG files)
// and cookies. The session is quit and chromedriver's process group killed on drop.
// Also: `decode_qr` (zbarimg on a screenshot). Owned by the panel tests (helper C of issue 12);
// used by tests/panel_browser.rs and the harness self-test in it.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{self, PortLease};

/// Where Debian's chromium package puts the browser (a wrapper script).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// What the browser tests need on the machine (checked with `servers::require_prereqs`, which
/// skips loudly, or fails under CI: see tests/skip/).
pub const BROWSER_PREREQS: &[&str] = &["chromium", "chromedriver", "zbarimg"];

/// W3C WebDriver's key for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a WebDriver command may take (page loads included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _port: PortLease,
    profile: tempfile::TempDir,
    log: PathBuf,
}

/// One element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
    /// The selector it was found by (for messages).
    pub selector: String,
}

/// A cookie as WebDriver reports it.
#[derive(Clone, Debug)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height` window.
    /// Call `servers::require_prereqs(BROWSER_PREREQS)` first.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = servers::free_port();
        let profile = tempfile::Builder::new()
            .prefix("mailmfa-chromium-")
            .tempdir()
            .expect("chromium profile dir");
        let log = profile.path().join("chromedriver.log");
        let driver = Command::new(servers::find_program("chromedriver").expect("chromedriver"))
            .arg(format!("--port={}", port.port()))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(COMMAND_TIMEOUT))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{}", port.port());
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _port: port,
            profile,
            log,
        };
        b.wait_ready();
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-extensions".to_string(),
            "--hide-scrollbars".to_string(),
            "--force-device-scale-factor=1".to_string(),
            format!("--window-size={width},{height}"),
            format!(
                "--user-data-dir={}",
                b.profile.path().join("profile").display()
            ),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_string();
        b
    }

    /// Waits (up to 20 s) until chromedriver answers `/status` with ready.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut r) = self.agent.get(format!("{}/status", self.base)).call() {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                if v["value"]["ready"] == json!(true) {
                    return;
                }
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited early ({status})\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 20 s\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// One WebDriver command; returns its `value`, panics on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body) {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    /// One WebDriver command; Err holds the error's name and message.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut resp = result.map_err(|e| format!("transport: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("read body: {e}"))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("HTTP {status}: {e}: {text}"))?;
        if status != 200 {
            return Err(format!(
                "HTTP {status}: {}: {}",
                v["value"]["error"], v["value"]["message"]
            ));
        }
        Ok(v["value"].clone())
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current page's title.
    pub fn title(&self) -> String {
        self.call("GET", &self.s("/title"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The current page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element matching CSS `selector`, or None.
    pub fn try_find(&self, selector: &str) -> Option<Element<'_>> {
        let v = self
            .try_call(
                "POST",
                &self.s("/element"),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .ok()?;
        Some(Element {
            browser: self,
            id: v[ELEMENT_KEY].as_str()?.to_string(),
            selector: selector.to_string(),
        })
    }

    /// The element matching CSS `selector`; panics (with the page's URL and source) if none.
    pub fn find(&self, selector: &str) -> Element<'_> {
        self.try_find(selector).unwrap_or_else(|| {
            panic!(
                "no element {selector} on {}:\n{}",
                self.url(),
                self.source()
            )
        })
    }

    /// Every element matching CSS `selector`.
    pub fn find_all(&self, selector: &str) -> Vec<Element<'_>> {
        let v = self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": selector})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|id| Element {
                        browser: self,
                        id: id.to_string(),
                        selector: selector.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The text of `selector` (panics if it is missing).
    pub fn text(&self, selector: &str) -> String {
        self.find(selector).text()
    }

    /// Clears the input `selector` and types `text` into it.
    pub fn fill(&self, selector: &str, text: &str) {
        let e = self.find(selector);
        e.clear();
        e.send_keys(text);
    }

    /// Clicks `selector`, a link or a submit button, and waits (up to 20 s) until another
    /// document has replaced the current one and finished loading: chromedriver may return
    /// from a click before a form's POST and its redirect have landed.
    pub fn click(&self, selector: &str) {
        let old = self.find("html").id;
        self.find(selector).click();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let replaced = self.try_find("html").is_some_and(|h| h.id != old);
            if replaced
                && self.execute("return document.readyState;", json!([])) == json!("complete")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {selector} loaded no new page within 20 s (still {})",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Chooses `value` in the `<select>` `selector` (by clicking its option; no navigation).
    pub fn select(&self, selector: &str, value: &str) {
        self.find(&format!("{selector} option[value=\"{value}\"]"))
            .click();
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its
    /// result. WebDriver's scripts are not the page's: the panel's CSP does not apply to them.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Sets the window's size.
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot_png(&self) -> Vec<u8> {
        let v = self.call("GET", &self.s("/screenshot"), None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot is a string"))
            .expect("screenshot is base64")
    }

    /// Writes a PNG of the viewport to `path` and returns the path.
    pub fn screenshot(&self, path: &Path) -> PathBuf {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, self.screenshot_png())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_path_buf()
    }

    /// The cookies the browser holds for the current page.
    pub fn cookies(&self) -> Vec<Cookie> {
        let v = self.call("GET", &self.s("/cookie"), None);
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| Cookie {
                        name: c["name"].as_str().unwrap_or_default().into(),
                        value: c["value"].as_str().unwrap_or_default().into(),
                        path: c["path"].as_str().unwrap_or_default().into(),
                        secure: c["secure"].as_bool().unwrap_or(false),
                        http_only: c["httpOnly"].as_bool().unwrap_or(false),
                        same_site: c["sameSite"].as_str().unwrap_or_default().into(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The cookie called `name`, if the browser holds one for the current page.
    pub fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().into_iter().find(|c| c.name == name)
    }

    /// Forgets every cookie of the current page's site.
    pub fn delete_cookies(&self) {
        self.call("DELETE", &self.s("/cookie"), None);
    }
}

impl Element<'_> {
    fn e(&self, rest: &str) -> String {
        self.browser.s(&format!("/element/{}{rest}", self.id))
    }

    /// Its visible text.
    pub fn text(&self) -> String {
        self.browser
            .call("GET", &self.e("/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Its attribute `name` (None when absent).
    pub fn attr(&self, name: &str) -> Option<String> {
        self.browser
            .call("GET", &self.e(&format!("/attribute/{name}")), None)
            .as_str()
            .map(str::to_string)
    }

    /// Its DOM property `name` (e.g. `value`), as JSON.
    pub fn prop(&self, name: &str) -> Value {
        self.browser
            .call("GET", &self.e(&format!("/property/{name}")), None)
    }

    /// Its tag name.
    pub fn tag(&self) -> String {
        self.browser
            .call("GET", &self.e("/name"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Types `text` into it.
    pub fn send_keys(&self, text: &str) {
        self.browser
            .call("POST", &self.e("/value"), Some(json!({ "text": text })));
    }

    /// Empties it (an input).
    pub fn clear(&self) {
        self.browser.call("POST", &self.e("/clear"), None);
    }

    /// Clicks it (and waits for a navigation it starts).
    pub fn click(&self) {
        self.browser.call("POST", &self.e("/click"), None);
    }

    /// Whether it is displayed.
    pub fn displayed(&self) -> bool {
        self.browser.call("GET", &self.e("/displayed"), None) == json!(true)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &format!("/session/{}", self.session), None);
        }
        // chromedriver and its Chromium.
        servers::stop_group(&mut self.driver, libc::SIGTERM, Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!("--- chromedriver log (tail) ---\n{}", self.log_tail());
        }
    }
}

/// The text of the QR codes `zbarimg --raw -q` finds in the PNG at `png` (one per line;
/// empty when it finds none).
pub fn decode_qr(png: &Path) -> Vec<String> {
    let out = Command::new(servers::find_program("zbarimg").expect("zbarimg"))
        .args(["--raw", "-q"])
        .arg(png)
        .stdin(Stdio::null())
        .output()
        .expect("run zbarimg");
    // zbarimg exits 4 when it finds no symbol.
    BufReader::new(&out.stdout[..])
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A `file://` URL for a local path.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}
