//! Reading the mail a test server sent: `.eml` files from its mail folder,
//! or messages a real SMTP server (run in the test process, over a socket)
//! received. Both give each message's raw text.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

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

/// A small SMTP server on 127.0.0.1 (no TLS, as on a loopback relay):
/// it accepts every message, except that a recipient containing `reject`
/// is refused for good (550). Stop it and start it again on the same port
/// to simulate an outage; the inbox is kept.
pub struct SmtpServer {
    pub port: u16,
    pub inbox: Arc<Mutex<Vec<Received>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SmtpServer {
    /// On a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, Arc::default())
    }

    /// On `port`, keeping `inbox` (after an outage).
    pub async fn start_on(port: u16, inbox: Arc<Mutex<Vec<Received>>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Self::serve(listener, inbox)
    }

    fn serve(listener: TcpListener, inbox: Arc<Mutex<Vec<Received>>>) -> Self {
        let port = listener.local_addr().unwrap().port();
        let shared = inbox.clone();
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let inbox = shared.clone();
                sessions.spawn(async move {
                    let _ = session(socket, inbox).await;
                });
            }
        });
        Self {
            port,
            inbox,
            task: Some(task),
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stop listening and drop every connection (the port is free again).
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
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
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    inbox: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test ESMTP\r\n").await?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO")
            || upper.starts_with("MAIL")
            || upper.starts_with("RSET")
            || upper.starts_with("NOOP")
        {
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT") {
            if line.contains("reject") {
                b"550 no such user\r\n"
            } else {
                rcpt.push(line.trim().to_owned());
                b"250 OK\r\n"
            }
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                raw.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            inbox.lock().unwrap().push(Received {
                rcpt: std::mem::take(&mut rcpt),
                raw,
            });
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}
