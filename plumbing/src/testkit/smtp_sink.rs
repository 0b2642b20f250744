//! An SMTP sink per test: Python's aiosmtpd (from the venv `compose/smtp-sink.sh venv`
//! creates; `SMTP_SINK_PYTHON` names its python) on a free port, storing mails in its own
//! Maildir; and the few headers the tests read from those mails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::testkit;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("SMTP_SINK_PYTHON") {
        return PathBuf::from(python);
    }
    let cache = std::env::var("TICKETING_CACHE_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/ticketing",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        )
    });
    PathBuf::from(cache).join("venv/bin/python")
}

pub struct SmtpSink {
    /// Killed when the sink is dropped.
    _child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> SmtpSink {
        let dir = std::env::temp_dir().join(format!("smtp-sink-{}", Uuid::new_v4().simple()));
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create the Maildir");
        }
        let python = python();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start aiosmtpd with {} ({e}): run compose/smtp-sink.sh venv",
                    python.display()
                )
            });
        testkit::eventually(
            "the SMTP sink to listen",
            Duration::from_secs(30),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
        SmtpSink {
            _child: child,
            port,
            dir,
        }
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|raw| Mail::parse(&raw))
            .collect()
    }

    /// The mails whose Message-ID names `booking_id`.
    pub fn mails_of(&self, booking_id: Uuid) -> Vec<Mail> {
        let needle = format!("<{booking_id}.");
        self.mails()
            .into_iter()
            .filter(|m| m.message_id().starts_with(&needle))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A stored mail: unfolded headers and the raw text (bodies are 7-bit ASCII here).
#[derive(Debug, Clone)]
pub struct Mail {
    headers: Vec<(String, String)>,
    pub raw: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let head = raw
            .split("\r\n\r\n")
            .next()
            .and_then(|h| (h.len() < raw.len()).then_some(h))
            .unwrap_or_else(|| raw.split("\n\n").next().unwrap_or(raw));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            let line = line.trim_end_matches('\r');
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Mail {
            headers,
            raw: raw.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn message_id(&self) -> &str {
        self.header("message-id").unwrap_or_default()
    }
}
