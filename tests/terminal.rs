//! wsstack in a real terminal (tmux): spinners while `up` works, then one plain line per
//! resource; plain lines only when piped; no colour escape reaches the terminal under NO_COLOR.
//! tmux comes from scripts/setup (Debian's package).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{stack_text, wsstack_binary, Env, REGION};

/// A tmux server of this test alone (its own socket), killed at the end.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (scripts/setup)");
        assert!(output.status.success(), "tmux {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).output();
    }
}

/// An SGR sequence (`ESC [ ... m`): what colours and bold are made of.
fn has_colour(raw: &str) -> bool {
    raw.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[')
            .map(|r| {
                let end = r.find(|c: char| !(c.is_ascii_digit() || c == ';'));
                end.is_some_and(|i| r[i..].starts_with('m'))
            })
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn up_shows_spinners_on_a_terminal_and_plain_lines_when_piped() {
    let env = Env::start().await;
    // Slow calls, so that the spinners are on screen long enough to be seen.
    env.proxy.set_latency(Duration::from_millis(80));
    let stack = env.write_stack("stack.yaml", &stack_text("tty", &[]));
    let dir = env.dir.path();
    let raw_log = dir.join("raw.log");
    let script = dir.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={REGION} \
             AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL={} NO_COLOR=1 HOME={}\nsleep 1\n'{}' -f '{}' up\necho EXIT=$?\nsleep 600\n",
            env.proxy.endpoint(),
            dir.display(),
            wsstack_binary(),
            stack.display()
        ),
    )
    .unwrap();
    let tmux = Tmux {
        socket: format!("wsstack-test-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "150",
        "-y",
        "60",
        "-s",
        "t",
        &format!("sh {}", script.display()),
    ]);
    tmux.run(&["pipe-pane", "-t", "t", "-o", &format!("cat >> '{}'", raw_log.display())]);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut spinner_seen = false;
    let screen = loop {
        let screen = tmux.run(&["capture-pane", "-t", "t", "-p"]);
        spinner_seen |= screen
            .lines()
            .any(|l| l.contains("applying ") || l.contains("reading "));
        if screen.contains("EXIT=") {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "up did not finish in the terminal:\n{screen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(spinner_seen, "a spinner line was on screen while up worked");
    assert!(screen.contains("+ created     SQS queue"), "{screen}");
    assert!(
        !screen.contains("applying "),
        "the spinners are gone when up is done:\n{screen}"
    );
    let raw = std::fs::read_to_string(&raw_log).unwrap_or_default();
    assert!(raw.contains("created"), "the raw terminal output was captured: {raw:?}");
    assert!(
        !has_colour(&raw),
        "NO_COLOR: no colour sequence reached the terminal: {raw:?}"
    );

    // Piped: the same run (now a no-op) is plain lines, no cursor movement, no carriage return.
    let piped = env.run(&stack, &["up"]).await.expect_exit(0);
    piped.expect_stdout("= unchanged");
    assert!(
        !piped.stdout.contains('\u{1b}') && !piped.stdout.contains('\r'),
        "{piped}"
    );
}

#[test]
fn sgr_detection_finds_colour_and_ignores_cursor_moves() {
    assert!(has_colour("a\u{1b}[31mred\u{1b}[0m"));
    assert!(!has_colour("\u{1b}[2K\u{1b}[1A line"));
}
