//! The `chatbot` binary as a process of its own, for tests that need one: signals,
//! JSON logs, restarts, several processes on one database. The test crate declares
//! the API support module as `support` (`#[path = "api/support.rs"] mod support;`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chatbot_persistence::testing::TestDb;
use serde_json::Value;

use crate::support::{Client, SECRET};

/// How to start a `chatbot serve` process.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// `DATABASE_URL`.
    pub url: &'a str,
    /// Variables set on top of the test environment.
    pub overrides: &'a [(&'a str, &'a str)],
    /// Variables of the test environment left unset, so the binary's defaults apply.
    pub unset: &'a [&'a str],
    /// A command that runs the binary, which is appended to it as its last arguments
    /// (e.g. `setpriv --reuid=…`); empty to run it directly. Whatever it is must
    /// `exec` the binary, so that the process is the server itself.
    pub wrapper: &'a [&'a str],
}

impl<'a> Launch<'a> {
    /// The binary on `url` with the test environment.
    pub fn on(url: &'a str) -> Self {
        Self {
            url,
            overrides: &[],
            unset: &[],
            wrapper: &[],
        }
    }
}

/// A `chatbot serve` process on a free port; killed if a test leaves it running.
pub struct Chatbot {
    child: Child,
    address: String,
    /// The JSON log lines it has written so far.
    logs: Arc<Mutex<Vec<Value>>>,
    /// What it wrote to stderr (a panic, say), line by line.
    stderr: Arc<Mutex<Vec<String>>>,
    _folder: tempfile::TempDir,
}

impl Chatbot {
    /// Starts the binary on `db` in the production profile (JSON logs), with
    /// `overrides` on top of the test environment, and waits until it serves.
    pub fn start(db: &TestDb, overrides: &[(&str, &str)]) -> Self {
        Self::launch(&Launch {
            overrides,
            ..Launch::on(db.url())
        })
    }

    /// Starts the binary as `launch` says and waits until it serves.
    pub fn launch(launch: &Launch<'_>) -> Self {
        // A folder without config/, so the binary runs on its embedded configuration.
        let folder = tempfile::tempdir().unwrap();
        // Open to a wrapper that runs the binary as another user.
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let binary = env!("CARGO_BIN_EXE_chatbot");
        let mut command = match launch.wrapper.split_first() {
            None => Command::new(binary),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
        };
        command
            .current_dir(folder.path())
            .env_clear()
            .envs([
                ("APP_ENV", "production"),
                ("DATABASE_URL", launch.url),
                ("SECRET_KEY", SECRET),
                ("HOST", "127.0.0.1"),
                ("PORT", "0"),
                ("CHATBOT__AUTH__BCRYPT_COST", "4"),
                // Hundreds of clients sign up at once in the reliability scenarios, which
                // are about writes; the bounded hashing queue has tests of its own.
                ("CHATBOT__AUTH__HASH_QUEUE_PER_THREAD", "10000"),
                ("CHATBOT__SERVER__WORKERS", "1"),
                ("CHATBOT__RATE_LIMIT__ENABLED", "false"),
                // Plain HTTP in tests: the cookie must come back over it.
                ("CHATBOT__SESSION__COOKIE_SECURE", "false"),
            ])
            .envs(launch.overrides.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let (false, Ok(path)) = (launch.wrapper.is_empty(), std::env::var("PATH")) {
            // For the wrapper; the binary itself needs no PATH.
            command.env("PATH", path);
        }
        for name in launch.unset {
            command.env_remove(name);
        }
        let mut child = command.spawn().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (serving, address) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn({
            let logs = Arc::clone(&logs);
            move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let entry: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
                    if let Some(address) = entry["address"].as_str() {
                        let _ = serving.send(address.to_owned());
                    }
                    logs.lock().unwrap().push(entry);
                }
            }
        });
        let errors = child.stderr.take().unwrap();
        std::thread::spawn({
            let stderr = Arc::clone(&stderr);
            move || {
                for line in BufReader::new(errors).lines() {
                    let Ok(line) = line else { break };
                    // Straight to the terminal, as an inherited stderr would be.
                    let _ = writeln!(std::io::stderr(), "{line}");
                    stderr.lock().unwrap().push(line);
                }
            }
        });
        let Ok(address) = address.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "the server did not say where it serves ({status:?}); stderr: {:?}",
                stderr.lock().unwrap()
            );
        };
        Self {
            child,
            address,
            logs,
            stderr,
            _folder: folder,
        }
    }

    /// A client of this server, with no session yet.
    pub fn client(&self) -> Client {
        Client::new(&self.base())
    }

    /// `http://host:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits up to `limit` for the process to end.
    pub fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the port takes new connections.
    pub fn accepts(&self) -> bool {
        TcpStream::connect(&self.address).is_ok()
    }

    /// The log lines that pass `filter`.
    pub fn logged(&self, filter: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|line| filter(line))
            .cloned()
            .collect()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Chatbot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for `condition`.
pub async fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
