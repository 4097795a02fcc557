//! # wactor-tests
//!
//! Shared helpers of wactor's end-to-end tests (and of the bench harness):
//! where the guest components are, where the `wactor` binary is, an
//! in-memory actor state, and a small real HTTP server to point actors at.
//!
//! The build script compiles every example (`examples/*`) and fixture actor
//! (`tests/fixtures/*`) to `wasm32-wasip2` in release mode; [`guest`] finds
//! the result by package name. The tests themselves are in `tests/tests/`:
//! `runtime.rs` drives the `wactor_runtime` API, `invoke.rs` the `wactor`
//! binary.
//!
//! [`kafka`] is the Kafka harness (an in-process broker, hosts, `wactor
//! serve` child processes, producing and reading records) of the Kafka
//! tests and benchmarks. What the crate deliberately does not do: touch
//! wasmtime directly.

pub mod kafka;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use wactor_runtime::{Effects, StateReader, StateWrite};

/// Directory of the compiled guest components.
pub const GUESTS_DIR: &str = env!("WACTOR_GUESTS_DIR");

/// Path of the compiled component of the guest package `name` (for example
/// `"echo"`, `"payment-reversal"`, `"fixture-trap"`). Panics with a clear
/// message when it was not built.
pub fn guest(name: &str) -> PathBuf {
    let path = PathBuf::from(GUESTS_DIR).join(format!("{}.wasm", name.replace('-', "_")));
    if !path.exists() {
        panic!(
            "guest component {} is missing: is {name:?} in the GUESTS list of tests/build.rs? \
             (it is built by the wactor-tests build script)",
            path.display()
        );
    }
    path
}

/// The component of the Python or JavaScript example `examples/<example>`
/// (for example `"payment-reversal-py"`), built with `wactor build --out`
/// into [`GUESTS_DIR`] as `<example with _>.wasm` when it is missing or
/// older than the example's files or the `wactor` binary (which carries
/// the SDKs). Needs the language's tool chain (componentize-py,
/// componentize-js and esbuild: `.ci/run` installs them); panics with
/// `wactor build`'s own error otherwise, so a missing tool fails the test
/// rather than skipping it.
pub fn language_guest(example: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    let out = PathBuf::from(GUESTS_DIR).join(format!("{}.wasm", example.replace('-', "_")));
    let built_at = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    let newest_input = newest_mtime(&dir)
        .into_iter()
        .chain(
            std::fs::metadata(wactor_bin())
                .and_then(|m| m.modified())
                .ok(),
        )
        .max();
    let fresh = matches!((built_at, newest_input), (Some(built), Some(input)) if built >= input);
    if fresh {
        return out;
    }
    let output = std::process::Command::new(wactor_bin())
        .arg("build")
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run wactor build: {e}"));
    if !output.status.success() {
        panic!(
            "wactor build {} failed:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    out
}

/// The newest modification time of the files under `dir`, leaving out
/// generated and installed trees and built components.
fn newest_mtime(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == ".wactor" || name == "node_modules" || name == "__pycache__" {
            continue;
        }
        let time = if path.is_dir() {
            newest_mtime(&path)
        } else if name.ends_with(".wasm") {
            None
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// The bytes of [`guest`]`(name)`.
pub fn guest_bytes(name: &str) -> Vec<u8> {
    let path = guest(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot read {}: {err}", path.display()),
    }
}

/// The `wactor` binary to test: `$WACTOR_BIN`, or `wactor` in the target
/// profile directory of the running test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/wactor`). Panics
/// with a clear message when it is not there.
///
/// `cargo test --workspace` builds it (the `wactor` package has an
/// integration test, so cargo builds its binary before running tests).
pub fn wactor_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WACTOR_BIN") {
        return PathBuf::from(path);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => panic!("cannot locate the test executable: {err}"),
    };
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let bin = profile_dir.join(format!("wactor{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        panic!(
            "the wactor binary is not at {}: run the tests with `cargo test --workspace` \
             (or `cargo build -p wactor` first), or set WACTOR_BIN",
            bin.display()
        );
    }
    bin
}

/// An actor's state in memory: a [`StateReader`] that `done` calls' writes
/// can be applied to, as the host applies them to sled.
#[derive(Debug, Default)]
pub struct MapState {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MapState {
    /// An empty state.
    pub fn new() -> Arc<Self> {
        Arc::new(MapState::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a call's state writes.
    pub fn apply(&self, effects: &Effects) {
        let mut entries = self.lock();
        for (key, write) in &effects.state_writes {
            match write {
                StateWrite::Set(value) => {
                    entries.insert(key.clone(), value.clone());
                }
                StateWrite::Delete => {
                    entries.remove(key);
                }
            }
        }
    }

    /// Sets one key directly.
    pub fn set(&self, key: &str, value: impl Into<Vec<u8>>) {
        self.lock().insert(key.to_string(), value.into());
    }

    /// A copy of every entry.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().clone()
    }

    /// The value of `key` as text.
    pub fn get_text(&self, key: &str) -> Option<String> {
        self.lock()
            .get(key)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }
}

impl StateReader for MapState {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.lock().get(key).cloned())
    }
}

/// One scripted reply of the [`TestServer`].
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Time to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// A reply with `status`, no headers, an empty body and no delay.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Answers only after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the [`TestServer`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct ServerState {
    replies: VecDeque<Reply>,
    requests: Vec<Recorded>,
}

/// A tiny real HTTP/1.1 server on `127.0.0.1:<free port>` for actors to
/// call: it answers with the scripted [`Reply`]s in order (then `200 {}`),
/// one request per connection, and records every request.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts the server.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(ServerState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("test-http-server".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            let state = state.clone();
                            std::thread::spawn(move || serve(stream, &state));
                        }
                    }
                })?
        };
        Ok(TestServer {
            addr,
            state,
            stop,
            acceptor: Some(acceptor),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a reply for the next request that has none.
    pub fn reply(&self, reply: Reply) -> &Self {
        self.lock().replies.push_back(reply);
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`, the form an allow-list entry takes.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor up so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(stream: TcpStream, state: &Mutex<ServerState>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let reply = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.requests.push(request);
        state
            .replies
            .pop_front()
            .unwrap_or_else(|| Reply::status(200).body("{}"))
    };
    std::thread::sleep(reply.delay);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

fn read_request(reader: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
