//! Reading the mail a test server sent: `.eml` files from its mail folder,
//! or messages a real SMTP server received over a socket: aiosmtpd, run by
//! `tests/smtp/server.py` (the same harness as the React example's
//! end-to-end run). Both give each message's raw text.
//!
//! The SMTP server's Python: `LATCHKEY_TEST_SMTP_PYTHON`, else
//! `tests/smtp/.venv` (made by `tests/smtp/setup.sh`), else a venv made once
//! under the target directory by the same script from
//! `tests/smtp/requirements.txt` (PyPI the first time). Without it the
//! tests that need it are skipped, except under `CI=true`, where they fail.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One received message: its envelope recipients and raw text.
#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt: Vec<String>,
    pub raw: String,
}

impl Received {
    /// The message with quoted-printable soft breaks and `=3D` undone, so
    /// links can be found in it.
    pub fn decoded(&self) -> String {
        decode_qp(&self.raw)
    }

    /// The token of the link to `path` (e.g. `/reset-password`).
    pub fn token(&self, path: &str) -> Option<String> {
        token_in(&self.decoded(), path)
    }

    /// The `Subject` header.
    pub fn subject(&self) -> String {
        self.raw
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_owned()
    }
}

pub fn decode_qp(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The 43-character token following `path?token=` in `text`.
pub fn token_in(text: &str, path: &str) -> Option<String> {
    let marker = format!("{path}?token=");
    let start = text.find(&marker)? + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (token.len() == 43).then_some(token)
}

/// Every `.eml` file in `dir` (none when it does not exist yet), oldest first.
pub fn eml_files(dir: &Path) -> Vec<(std::path::PathBuf, Received)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let raw = std::fs::read_to_string(&p).unwrap();
            let to = raw
                .lines()
                .find_map(|l| l.strip_prefix("To: "))
                .unwrap_or("")
                .to_owned();
            (
                p,
                Received {
                    rcpt: vec![to],
                    raw,
                },
            )
        })
        .collect()
}

/// Messages in `dir` addressed to `to`.
pub fn eml_to(dir: &Path, to: &str) -> Vec<Received> {
    eml_files(dir)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.rcpt.iter().any(|r| r.contains(to)))
        .collect()
}

/// Wait (up to 10 s) until `dir` holds at least `n` messages to `to`.
pub async fn wait_for_eml(dir: &Path, to: &str, n: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = eml_to(dir, to);
        if found.len() >= n || Instant::now() > deadline {
            assert!(
                found.len() >= n,
                "{} of {n} messages to {to} arrived",
                found.len()
            );
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The token of the newest message to `to` holding a link to `path`.
pub async fn eml_token(dir: &Path, to: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(token) = eml_to(dir, to).iter().rev().find_map(|m| m.token(path)) {
            return token;
        }
        assert!(Instant::now() < deadline, "no {path} link mailed to {to}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Python that imports aiosmtpd, found or made once per test binary.
fn find_or_make_python() -> Result<PathBuf, String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smtp-venv");
    fn imports(python: &Path) -> bool {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    }
    let candidates = [
        std::env::var_os("LATCHKEY_TEST_SMTP_PYTHON").map(PathBuf::from),
        Some(here.join(".venv/bin/python")),
        Some(venv.join("bin/python")),
    ];
    for python in candidates.into_iter().flatten() {
        if imports(&python) {
            return Ok(python);
        }
    }
    let made = Command::new("bash")
        .arg(here.join("setup.sh"))
        .arg(&venv)
        .status()
        .map_err(|e| format!("tests/smtp/setup.sh: {e}"))?;
    let python = venv.join("bin/python");
    if !made.success() || !imports(&python) {
        return Err(format!(
            "tests/smtp/setup.sh {} could not install aiosmtpd",
            venv.display()
        ));
    }
    Ok(python)
}

/// The SMTP server's Python, or `None` (skip) outside CI.
fn smtp_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_make_python) {
        Ok(python) => Some(python.clone()),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the SMTP test server (aiosmtpd) is required in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping: no SMTP test server: {e}");
            None
        }
    }
}

/// A real SMTP server on 127.0.0.1 (aiosmtpd in its own process, no TLS, as
/// on a loopback relay): it accepts every message, except that a recipient
/// containing `reject` is refused for good (550). `stop` then `restart` is
/// an outage: the port refuses connections meanwhile, then the server
/// listens on it again; its inbox (a folder) keeps what arrived.
pub struct SmtpServer {
    pub port: u16,
    python: PathBuf,
    inbox: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpServer {
    /// On a free port; `None` when there is no aiosmtpd and this is not CI
    /// (the caller skips).
    pub async fn start() -> Option<Self> {
        let python = smtp_python()?;
        let inbox = tempfile::tempdir().unwrap();
        let mut server = Self {
            port: 0,
            python,
            inbox,
            child: None,
        };
        server.launch().await;
        Some(server)
    }

    /// Start the process on `self.port` (0: any) and wait until it listens.
    async fn launch(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .arg("--dir")
            .arg(self.inbox.path())
            .arg("--port")
            .arg(self.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/smtp/server.py");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("tests/smtp/server.py did not start ({e}): {line:?}"));
        self.port = u16::try_from(ready["port"].as_u64().unwrap()).unwrap();
        self.child = Some(child);
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Kill the server: the port refuses connections, open ones are dropped.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }

    /// Listen on the same port again, with the same inbox (after `stop`).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after stop");
        self.launch().await;
    }

    /// Messages received so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.inbox.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let m: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                Received {
                    rcpt: m["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect(),
                    raw: m["data"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    /// Wait (up to `within`) until `n` messages were received.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
