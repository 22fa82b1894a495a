//! The moto AWS emulator as a child process on a free loopback port: the one launcher that
//! `wsstack dev` and the tests share. It notices a server that dies while starting and says why
//! (its last output lines) instead of waiting out the deadline. It knows nothing of stacks or tests.
//! What moto lacks of the AWS APIs wsstack calls is added in the server process (`gaps.py`).
//!
//! Blocking on purpose: it runs once per process or per test, and async callers wrap it in
//! `spawn_blocking`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Lines of the server's output kept to explain a failed start.
const KEPT_LINES: usize = 20;
/// Fresh ports tried when the one we picked was taken before moto could bind it.
const PORT_ATTEMPTS: usize = 5;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub executable: PathBuf,
    /// Extra environment for the server process.
    pub env: Vec<(String, String)>,
    /// How long a live server may take to answer its first request.
    pub ready_within: Duration,
}

impl Launch {
    pub fn new(executable: impl Into<PathBuf>) -> Launch {
        Launch {
            executable: executable.into(),
            env: Vec::new(),
            ready_within: Duration::from_secs(30),
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn ready_within(mut self, deadline: Duration) -> Launch {
        self.ready_within = deadline;
        self
    }
}

/// The first existing file among `candidates`.
pub fn find_executable(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|path| path.is_file())
}

/// A running moto server; killed when dropped.
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    /// `sitecustomize.py`, kept while the server runs.
    _gaps: tempfile::TempDir,
}

/// The last lines a server wrote (stdout and stderr), read on threads of their own so that a
/// chatty server never blocks on a full pipe.
#[derive(Default)]
struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Tail {
    fn follow(&mut self, output: impl Read + Send + 'static) {
        let lines = self.lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                let mut kept = lines.lock().unwrap();
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        self.readers.push(reader);
    }

    /// The last lines, once every reader has reached the end of its output (the process has
    /// exited), or after `patience` if something else still holds a pipe open. Waiting for the
    /// readers, not a fixed moment: on a loaded machine they may be late, and the last words
    /// ("No module named ...", "Address already in use") are the ones that matter.
    fn text_at_end(&self, patience: Duration) -> String {
        let started = Instant::now();
        while self.readers.iter().any(|r| !r.is_finished()) && started.elapsed() < patience {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lines
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl MotoServer {
    /// Start the server on a free loopback port and wait until it answers.
    pub fn start(launch: &Launch) -> Result<MotoServer> {
        if !launch.executable.is_file() {
            bail!("the moto server {} does not exist", launch.executable.display());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            match start_on(launch, port) {
                Ok(server) => return Ok(server),
                Err(Start::PortTaken(_)) if attempt < PORT_ATTEMPTS => continue,
                Err(Start::PortTaken(error) | Start::Failed(error)) => return Err(error),
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Clear all emulator state.
    pub fn reset(&self) -> Result<()> {
        http_request(self.addr, "POST", "/moto-api/reset").map(|_| ())
    }

    /// Whether the server process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Start {
    /// Another process bound the port between our probe and moto's bind: worth another port.
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

/// What moto lacks of the AWS APIs wsstack calls (GetRouteResponses, an API's IpAddressType,
/// UpdateStage, DeleteRouteSettings, DeleteAccessLogSettings, access logging's account role, the
/// managed policy that role takes), added in the server
/// process: Python imports `sitecustomize` from PYTHONPATH at start-up, whatever starts it (the
/// `moto_server` script pip writes, a pyenv shim, a wrapper script).
const GAPS: &str = include_str!("gaps.py");

/// A private folder (mkdtemp, 0700) holding `sitecustomize.py`, and PYTHONPATH with it first.
fn gap_filler(launch: &Launch) -> Result<(tempfile::TempDir, std::ffi::OsString)> {
    use std::os::unix::fs::PermissionsExt;
    // tempfile's folders get the default permissions (0777 less the umask) unless told.
    let dir = tempfile::Builder::new()
        .prefix("wsstack-moto-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("making a folder for moto's additions")?;
    std::fs::write(dir.path().join("sitecustomize.py"), GAPS).context("writing moto's additions")?;
    let given = launch
        .env
        .iter()
        .find(|(name, _)| name == "PYTHONPATH")
        .map(|(_, v)| v.into());
    let inherited = given.or_else(|| std::env::var_os("PYTHONPATH"));
    let paths = std::iter::once(dir.path().to_path_buf()).chain(inherited.iter().flat_map(std::env::split_paths));
    let path = std::env::join_paths(paths).context("PYTHONPATH")?;
    Ok((dir, path))
}

fn start_on(launch: &Launch, port: u16) -> Result<MotoServer, Start> {
    let (gaps, python_path) = gap_filler(launch).map_err(Start::Failed)?;
    let mut command = Command::new(&launch.executable);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // moto allows every origin by default (flask-cors): a web page open in the developer's
        // browser that finds the port could then read the emulator's secrets and tables.
        // moto 5.x reads the variable as a flag (`bool(os.environ.get(...))`, moto/settings.py).
        .env("MOTO_DISABLE_GLOBAL_CORS", "true")
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env("PYTHONPATH", python_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_retrying_busy_text(&mut command)
        .with_context(|| format!("starting {}", launch.executable.display()))
        .map_err(Start::Failed)?;
    let mut tail = Tail::default();
    if let Some(stdout) = child.stdout.take() {
        tail.follow(stdout);
    }
    if let Some(stderr) = child.stderr.take() {
        tail.follow(stderr);
    }
    let mut server = MotoServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _gaps: gaps,
    };
    let started = Instant::now();
    loop {
        if let Some(status) = server.exited() {
            let output = tail.text_at_end(Duration::from_secs(10));
            let error = anyhow::anyhow!(
                "the moto server {} exited while starting ({status}){}",
                launch.executable.display(),
                if output.is_empty() {
                    String::new()
                } else {
                    format!(":\n{output}")
                }
            );
            return Err(if output.contains("in use") {
                Start::PortTaken(error)
            } else {
                Start::Failed(error)
            });
        }
        if http_request(server.addr, "GET", "/moto-api/data.json").is_ok() {
            return Ok(server);
        }
        if started.elapsed() > launch.ready_within {
            return Err(Start::Failed(anyhow::anyhow!(
                "the moto server on {} did not answer within {:?}",
                server.addr,
                launch.ready_within
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `spawn`, again after a moment when the executable is still open for writing somewhere
/// (ETXTBSY: a file just written while another thread forked).
fn spawn_retrying_busy_text(command: &mut Command) -> std::io::Result<Child> {
    let mut delay = Duration::from_millis(10);
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(ETXTBSY) && delay < Duration::from_secs(1) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
}

/// Linux's "text file busy".
const ETXTBSY: i32 = 26;

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn http_request(addr: SocketAddr, method: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
        bail!("{method} {path}: {}", response.lines().next().unwrap_or(""));
    }
    Ok(response)
}

/// Where a project keeps its moto server: `.venv/bin/moto_server` under `dir`.
pub fn in_venv(dir: &Path) -> PathBuf {
    dir.join(".venv/bin/moto_server")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("moto_server");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_server_that_dies_at_start_is_reported_at_once_with_its_last_words() {
        let dir = std::env::temp_dir().join(format!("wsstack-moto-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let executable = script(&dir, "echo 'ModuleNotFoundError: No module named werkzeug' >&2\nexit 1");
        let started = Instant::now();
        let error = MotoServer::start(&Launch::new(&executable).ready_within(Duration::from_secs(20)))
            .err()
            .expect("a server that exits cannot start");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let message = format!("{error:#}");
        assert!(message.contains("exited while starting"), "{message}");
        assert!(message.contains("No module named werkzeug"), "{message}");
    }

    #[test]
    fn a_missing_executable_is_named() {
        let error = MotoServer::start(&Launch::new("/nonexistent/moto_server"))
            .err()
            .unwrap();
        assert!(format!("{error:#}").contains("/nonexistent/moto_server"));
    }

    /// The moto the tests use: `WSSTACK_MOTO_SERVER`, else the project's `.venv`.
    fn projects_moto() -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        std::env::var_os("WSSTACK_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| in_venv(root))
    }

    #[test]
    fn the_projects_moto_starts_answers_and_resets() {
        let server = MotoServer::start(&Launch::new(projects_moto())).expect("moto starts");
        assert!(server.endpoint().starts_with("http://127.0.0.1:"));
        server.reset().expect("moto resets");
    }

    /// The status line and body of a GET signed for API Gateway (the signature is not checked).
    fn get_apigateway(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        let credential = "x/20260101/us-east-1/apigateway/aws4_request";
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={credential}, \
             SignedHeaders=host, Signature=x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.lines().next().unwrap_or_default().to_string();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (status, body)
    }

    /// A page of another origin gets no CORS permission from the emulator: neither a preflight
    /// nor a simple request is answered with `Access-Control-Allow-Origin`, so the browser keeps
    /// the answer from the page.
    #[test]
    fn other_origins_get_no_cors_permission() {
        let server = MotoServer::start(&Launch::new(projects_moto())).expect("moto starts");
        let addr = server.addr();
        let ask = |request: String| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        };
        let origin = "Origin: http://evil.example";
        let preflight = ask(format!(
            "OPTIONS / HTTP/1.1\r\nHost: {addr}\r\n{origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type, x-amz-target\r\nConnection: close\r\n\r\n"
        ));
        let body = r#"{"SecretId":"x"}"#;
        let simple = ask(format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\n{origin}\r\nContent-Type: text/plain\r\n\
             X-Amz-Target: secretsmanager.GetSecretValue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        for response in [preflight, simple] {
            assert!(
                !response.to_ascii_lowercase().contains("access-control-allow-origin"),
                "{response}"
            );
        }
    }

    /// GetRouteResponses, which moto lacks, answers (here: the API is unknown) also when moto is
    /// started through a wrapper script, as a pyenv shim does, not just the pip-written script.
    #[test]
    fn route_responses_can_be_listed_whatever_starts_moto() {
        let moto = projects_moto();
        let dir = tempfile::tempdir().unwrap();
        let wrapper = script(dir.path(), &format!("exec '{}' \"$@\"", moto.display()));
        for executable in [moto, wrapper] {
            let server = MotoServer::start(&Launch::new(&executable)).expect("moto starts");
            let (status, body) = get_apigateway(server.addr(), "/v2/apis/nope/routes/nope/routeresponses");
            assert!(status.contains(" 404 "), "{}: {status} {body}", executable.display());
            assert!(body.contains("NotFoundException"), "{}: {body}", executable.display());
        }
    }

    /// The Query patch (gaps.py) keeps every answer as moto gives it: moto/tests/query_equivalence.py
    /// asks the launched server and moto in its own process (unpatched) the same Queries (the
    /// handlers' own, table and index, paged, both directions, filters, projections, Select COUNT,
    /// consumed capacity, start keys of its own, pages cut at 1 MB, refused requests) and compares
    /// every page: status and body, byte for byte (a projected set of strings as a set: Python orders
    /// those differently in each process).
    #[test]
    fn a_query_answers_as_unpatched_moto_does() {
        let moto = projects_moto();
        let python = moto.with_file_name("python");
        let server = MotoServer::start(&Launch::new(&moto)).expect("moto starts");
        let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/query_equivalence.py");
        let output = Command::new(&python)
            .arg(&check)
            .arg(server.endpoint())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{text}");
        assert!(text.contains("the same answers"), "{text}");
    }
}
