//! `wsstack dev` on a shared machine and next to a browser: what another local user, a planted
//! file or a web page can no longer do to it, end to end through the binary (real handler
//! processes, real WebSocket clients, moto). The gateway's own bounds (header timeout, connection
//! cap, body bound) are also tested in process, in src/dev/gateway/security_tests.rs.

mod common;
#[path = "dev_e2e/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{stack_text, wsstack_binary, Env};
use futures::{SinkExt, StreamExt};
use harness::{all_connection_ids, connect, next_message, spawn_serving, subscribe};
use serde_json::Value;

/// A `wsstack dev` started from a command of the test's making; SIGINT, then SIGKILL, on drop.
struct Launched {
    child: Child,
    url: String,
}

impl Launched {
    /// Start `command` (a `wsstack dev`) and wait until it serves.
    async fn start(mut command: Command) -> Launched {
        command.stderr(Stdio::inherit());
        let (child, url) = spawn_serving(command).await;
        Launched { child, url }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ctrl-C, and wait (bounded) for the exit.
    fn stop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        for _ in 0..400 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// `wsstack dev` for stack `stack` (its file written into the work directory), straight to moto.
fn dev_command(env: &Env, stack: &str) -> Command {
    let path = env.write_stack(&format!("{stack}.yaml"), &stack_text(stack, &[]));
    let mut command = env.command(&path, &["dev", "--port", "0", "--quiet-handlers", "-q"]);
    command.env("AWS_ENDPOINT_URL", env.moto.endpoint());
    command
}

/// The note a running dev of `stack` keeps beside its stack file.
fn session_note(env: &Env, stack: &str) -> Value {
    let path = env.dir.path().join(format!(".wsstack/{stack}-dev.dev.json"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("dev's session note")).expect("JSON")
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so count from the last `)`.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent.and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// A process's environment, as `NAME=value` entries.
fn environment_of(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect()
}

/// Another user of the machine plants `$TMPDIR/wsstack-dev-{pid}` (the folder dev used to write
/// its handler binaries into) as a symlink to a folder of the developer's: dev must neither
/// write through it nor run anything from it. dev's own folder is private (0700), named at
/// random, and gone once dev stops. The developer's real AWS keys, in dev's environment, reach no
/// handler process: they run with the session's local keys, and no session token.
#[tokio::test]
async fn a_shared_machine_can_neither_plant_the_handlers_folder_nor_find_real_keys_in_a_handler() {
    let env = Env::start().await;
    let tmp = env.dir.path().join("tmp");
    let precious = env.dir.path().join("precious");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("bootstrap"), "the developer's own file").unwrap();

    // The shell plants the link for its own pid, then becomes dev with that pid (exec).
    let dev = dev_command(&env, "shared");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ln -s "$PRECIOUS" "$TMPDIR/wsstack-dev-$$" && exec "$0" "$@""#)
        .arg(dev.get_program())
        .args(dev.get_args())
        .current_dir(env.dir.path())
        .env_clear()
        .envs(dev.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TMPDIR", &tmp)
        .env("PRECIOUS", &precious)
        // The developer's real keys, as a shell holding a session would have them.
        .env("AWS_ACCESS_KEY_ID", "AKIAREALKEYOFTHEDEVELOPER")
        .env("AWS_SECRET_ACCESS_KEY", "the-developers-real-secret")
        .env("AWS_SESSION_TOKEN", "the-developers-real-session-token")
        .stdin(Stdio::null());
    let mut dev = Launched::start(command).await;

    // A subscription runs $connect and subscribe: handler processes are up.
    let (mut client, _) = connect(&dev.url, None).await;
    subscribe(&mut client, "order-1").await;

    assert_eq!(
        std::fs::read_to_string(precious.join("bootstrap")).unwrap(),
        "the developer's own file",
        "dev wrote through the planted link"
    );
    let planted = format!("wsstack-dev-{}", dev.pid());
    let folders: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("wsstack-dev-"))
        .filter(|e| e.file_name().to_string_lossy() != planted)
        .collect();
    assert_eq!(folders.len(), 1, "one folder of dev's own besides the planted link");
    let own = folders[0].path();
    let metadata = std::fs::symlink_metadata(&own).unwrap();
    assert!(metadata.is_dir(), "{}", own.display());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o700, "{}", own.display());

    let children = children_of(dev.pid());
    let handlers: Vec<(u32, Vec<String>)> = children
        .iter()
        .map(|pid| (*pid, environment_of(*pid)))
        .filter(|(_, environment)| environment.iter().any(|e| e.starts_with("AWS_LAMBDA_RUNTIME_API=")))
        .collect();
    assert!(!handlers.is_empty(), "no handler process among {children:?}");
    let session = session_note(&env, "shared");
    let session_key = format!(
        "AWS_ACCESS_KEY_ID={}",
        session["management"]["access_key_id"].as_str().unwrap()
    );
    for (pid, environment) in &handlers {
        let text = environment.join("\n");
        assert!(!text.contains("AKIAREALKEYOFTHEDEVELOPER"), "{text}");
        assert!(!text.contains("the-developers-real"), "{text}");
        assert!(!text.contains("AWS_SESSION_TOKEN="), "{text}");
        assert!(environment.contains(&session_key), "{text}");
        // Each runs from dev's private folder.
        let binary = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        assert!(binary.as_ref().is_none_or(|b| b.starts_with(&own)), "{binary:?}");
    }

    drop(client);
    dev.stop();
    assert!(!own.exists(), "dev's folder is removed when it stops");
    assert!(
        std::fs::symlink_metadata(tmp.join(&planted)).is_ok(),
        "the planted link is not dev's to remove"
    );
}

/// Whoever can write the `.wsstack/` note can point the other commands at any endpoint: a live
/// note naming another host is refused, by name, and nothing is sent there.
#[tokio::test]
async fn a_session_note_pointing_off_this_machine_is_refused() {
    let env = Env::start().await;
    let path = env.write_stack("remote.yaml", &stack_text("remote", &[]));
    let dir = env.dir.path().join(".wsstack");
    std::fs::create_dir_all(&dir).unwrap();
    let note = dir.join("remote-dev.dev.json");
    let text = serde_json::json!({
        "pid": std::process::id(),
        "endpoint": "http://203.0.113.5:4566",
        "region": "us-east-1",
        "gateway": "ws://203.0.113.5:8080/dev",
    });
    std::fs::write(&note, text.to_string()).unwrap();
    // Held as a running dev holds it.
    let held = std::fs::File::open(&note).unwrap();
    held.lock().unwrap();

    for args in [
        &["send-event", "--entity-id", "e", "--message", "m"][..],
        &["connect", "--timeout", "5"][..],
    ] {
        let mut command = env.command(&path, args);
        // No endpoint of its own: the note is all it has.
        command.env_remove("AWS_ENDPOINT_URL");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("http://203.0.113.5:4566") && stderr.contains("not on this machine"),
            "{args:?}: {stderr}"
        );
    }
}

/// A web page in the developer's browser can send a simple POST to the gateway's port: the
/// management API refuses it (403, as API Gateway refuses an unsigned call) and the client gets
/// nothing, while dev's own handlers, which sign with the session's keys, still answer through it
/// (the subscription's acknowledgement). A POST announcing 10 MB is answered 413 before any of
/// its body is sent.
#[tokio::test]
async fn a_web_page_cannot_post_to_a_connection_and_a_huge_post_is_refused_unread() {
    let env = Env::start().await;
    let dev = Launched::start(dev_command(&env, "browser")).await;
    let (mut client, _) = connect(&dev.url, None).await;
    subscribe(&mut client, "order-1").await;
    let id = all_connection_ids(&env, "browser-dev-connections").await.remove(0);
    let address = dev
        .url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let encoded = urlencoding::encode(&id).into_owned();
    let key = session_note(&env, "browser")["management"]["access_key_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (page, huge) = tokio::task::spawn_blocking(move || {
        let body = r#"{"type":"phished"}"#;
        let page = exchange(
            &address,
            &format!(
                "POST /dev/@connections/{encoded} HTTP/1.1\r\nHost: {address}\r\nOrigin: http://evil.example\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        let huge = exchange(
            &address,
            &format!(
                "POST /dev/@connections/{encoded} HTTP/1.1\r\nHost: {address}\r\nAuthorization: AWS4-HMAC-SHA256 \
                 Credential={key}/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=0\r\n\
                 Content-Length: 10485760\r\n\r\n"
            ),
        );
        (page, huge)
    })
    .await
    .unwrap();
    assert!(page.starts_with("HTTP/1.1 403"), "{page}");
    assert!(!page.to_ascii_lowercase().contains("access-control-allow"), "{page}");
    assert_eq!(next_message(&mut client, Duration::from_secs(1)).await, None);
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    // Still served: the handlers' own calls go through.
    subscribe(&mut client, "order-2").await;
}

/// One request on a fresh connection; the answer's first 4 KB, read within 10 s.
fn exchange(address: &str, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// The emulator dev starts for itself (no endpoint given) gives no other origin CORS permission:
/// a page that finds its port cannot read the stack's secret or tables.
#[tokio::test]
async fn the_emulator_dev_starts_grants_no_cross_origin_access() {
    let env = Env::start().await;
    let mut command = dev_command(&env, "cors");
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env("WSSTACK_MOTO_SERVER", testkit::Moto::executable());
    let _dev = Launched::start(command).await;
    let endpoint = session_note(&env, "cors")["endpoint"].as_str().unwrap().to_string();
    let address = endpoint.trim_start_matches("http://").to_string();
    let answers = tokio::task::spawn_blocking(move || {
        let preflight = exchange(
            &address,
            &format!(
                "OPTIONS / HTTP/1.1\r\nHost: {address}\r\nOrigin: http://evil.example\r\n\
                 Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-amz-target\r\n\
                 Connection: close\r\n\r\n"
            ),
        );
        let body = r#"{"Filters":[]}"#;
        let simple = exchange(
            &address,
            &format!(
                "POST / HTTP/1.1\r\nHost: {address}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\n\
                 X-Amz-Target: secretsmanager.ListSecrets\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        [preflight, simple]
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1"), "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("access-control-allow-origin"),
            "{answer}"
        );
    }
}

/// A one-connection WebSocket server: the protocols the client asked for, and its first frame.
async fn token_server() -> (String, tokio::task::JoinHandle<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
        use tokio_tungstenite::tungstenite::Message;
        let (stream, _) = listener.accept().await.unwrap();
        let mut asked = String::new();
        // The error type is tungstenite's (a whole HTTP response), not ours to shrink.
        #[allow(clippy::result_large_err)]
        let callback = |request: &Request, mut response: Response| {
            asked = request
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            response
                .headers_mut()
                .insert("sec-websocket-protocol", "websocket".parse().unwrap());
            Ok(response)
        };
        let mut socket = tokio_tungstenite::accept_hdr_async(stream, callback).await.unwrap();
        let first = loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => break text.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("no frame: {other:?}"),
            }
        };
        socket.send(Message::Text(r#"{"type":"done"}"#.into())).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        (asked, first)
    });
    (url, served)
}

/// `connect URL --count 1` with `extra` arguments, `variables` and `stdin`; its exit code.
async fn run_connect(url: &str, extra: &[&str], variables: &[(&str, &str)], stdin: &str) -> i32 {
    let mut command = Command::new(wsstack_binary());
    command
        .args(["connect", url, "--count", "1", "--timeout", "20", "-q"])
        .args(extra)
        .env_remove("WSSTACK_TOKEN")
        .envs(variables.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    tokio::task::spawn_blocking(move || child.wait().unwrap().code().unwrap_or(-1))
        .await
        .unwrap()
}

/// A token on the command line is visible to every user in `ps`: `connect` takes it from the first
/// line of standard input (`--token -`; the next lines are frames, as always) or from WSSTACK_TOKEN.
#[tokio::test]
async fn connect_takes_its_token_from_standard_input_or_the_environment() {
    let frame = r#"{"action":"subscribe","entityId":"order-1"}"#;
    let (url, served) = token_server().await;
    let code = run_connect(&url, &["--token", "-"], &[], &format!("token-from-stdin\n{frame}\n")).await;
    let (asked, first) = served.await.unwrap();
    assert_eq!(code, 0);
    assert_eq!(asked, "websocket, token-from-stdin");
    assert_eq!(first, frame, "the line after the token is the first frame");

    let (url, served) = token_server().await;
    let code = run_connect(&url, &[], &[("WSSTACK_TOKEN", "token-from-env")], &format!("{frame}\n")).await;
    let (asked, _) = served.await.unwrap();
    assert_eq!(code, 0);
    assert_eq!(asked, "websocket, token-from-env");

    // Nothing on standard input: refused before connecting.
    let output = Command::new(wsstack_binary())
        .args(["connect", "ws://127.0.0.1:1/", "--token", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token -"), "{stderr}");
}
