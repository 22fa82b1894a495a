//! The WebSocket client of `wsstack connect` (the command is `commands::connect`): like wscat,
//! for trying a stack by hand and for scripts. Sends the subscribe frames and waits for their
//! acknowledgements (`{"type":"subscribed","entityId":...}`) before it says it is subscribed and
//! reads stdin; prints every message received (acknowledgements too) as one JSON line on stdout,
//! sends each line read from stdin as a frame.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub struct ConnectOptions {
    pub url: String,
    pub subscribe: Vec<String>,
    pub protocol: Option<String>,
    /// Exit after this many messages (the acknowledgements of `subscribe` not counted).
    pub count: Option<usize>,
    /// Exit (code 1) if the connection is still open after this long.
    pub timeout: Option<Duration>,
    pub quiet: bool,
}

/// What a message means for the subscriptions still waiting for their acknowledgement.
#[derive(Debug, PartialEq)]
enum Answer {
    Subscribed(String),
    Refused(String),
    Other,
}

fn answer(text: &str) -> Answer {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Answer::Other;
    };
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(String::from);
    match field("type").as_deref() {
        Some("subscribed") => field("entityId").map_or(Answer::Other, Answer::Subscribed),
        Some("error") => Answer::Refused(field("message").unwrap_or_default()),
        _ => Answer::Other,
    }
}

/// A message as one JSON line: JSON text as it came (compacted only if it spans lines),
/// anything else as a JSON string.
pub fn as_json_line(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(_) if !text.contains('\n') => text.trim().to_string(),
        Ok(value) => value.to_string(),
        Err(_) => Value::String(text.to_string()).to_string(),
    }
}

pub async fn run(options: ConnectOptions) -> Result<u8> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("`{}` is not a WebSocket URL", options.url))?;
    if let Some(protocol) = &options.protocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.parse().context("bad --protocol value")?,
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            anyhow!("the server refused the connection: HTTP {}", response.status())
        }
        other => anyhow!("connecting to {}: {other}", options.url),
    })?;
    if !options.quiet {
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(|p| format!(" (protocol {p})"))
            .unwrap_or_default();
        eprintln!("connected to {}{protocol}", options.url);
    }
    let (mut sink, mut stream) = socket.split();
    // Acknowledged in any order; an error frame while any is waiting is a refused subscription
    // (the bundled `subscribe` refuses by error frame, and nothing else is sent yet).
    let mut waiting: BTreeSet<&str> = options.subscribe.iter().map(String::as_str).collect();
    // Each entity once: a repeated one would get a second acknowledgement, counted as a message.
    for entity in waiting.iter() {
        let frame = json!({"action": "subscribe", "entityId": entity}).to_string();
        sink.send(Message::Text(frame.into()))
            .await
            .context("sending a subscribe frame")?;
    }

    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut received = 0usize;
    let deadline = async {
        match options.timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut out = std::io::stdout();
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    writeln!(out, "{}", as_json_line(&text))?;
                    out.flush()?;
                    match answer(&text) {
                        Answer::Subscribed(entity) if waiting.remove(entity.as_str()) => {
                            if !options.quiet {
                                eprintln!("subscribed to {entity}");
                            }
                            continue;
                        }
                        Answer::Refused(message) if !waiting.is_empty() => {
                            eprintln!("subscribing failed: {message}");
                            let _ = sink.send(Message::Close(None)).await;
                            return Ok(1);
                        }
                        _ => received += 1,
                    }
                }
                Some(Ok(Message::Binary(data))) => {
                    writeln!(out, "{}", as_json_line(&String::from_utf8_lossy(&data)))?;
                    out.flush()?;
                    received += 1;
                }
                Some(Ok(Message::Close(frame))) => {
                    if !options.quiet {
                        eprintln!("closed by the server{}", frame.map(|f| format!(": {} {}", u16::from(f.code), f.reason)).unwrap_or_default());
                    }
                    return Ok(0);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(anyhow!("connection lost: {error}")),
                None => return Ok(0),
            },
            // Frames typed or piped in go out once the subscriptions are in place.
            line = stdin.next_line(), if stdin_open && waiting.is_empty() => match line {
                Ok(Some(line)) if !line.trim().is_empty() => {
                    sink.send(Message::Text(line.into())).await.context("sending a frame")?;
                }
                Ok(Some(_)) => {}
                // End of input: keep listening (a script may pipe nothing in).
                _ => stdin_open = false,
            },
            _ = &mut deadline => {
                let _ = sink.send(Message::Close(None)).await;
                if !waiting.is_empty() {
                    let waiting: Vec<&str> = waiting.into_iter().collect();
                    eprintln!("no acknowledgement of the subscription to {}", waiting.join(", "));
                }
                eprintln!("timed out with {received} messages");
                return Ok(1);
            }
            _ = tokio::signal::ctrl_c() => {
                let _ = sink.send(Message::Close(None)).await;
                return Ok(0);
            }
        }
        if options.count.is_some_and(|count| received >= count) {
            let _ = sink.send(Message::Close(None)).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(2), async { while stream.next().await.is_some() {} }).await;
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_print_as_one_json_line() {
        assert_eq!(as_json_line("{\n \"a\": 1\n}"), r#"{"a":1}"#);
        assert_eq!(as_json_line(r#"{"type":"x","a":1}"#), r#"{"type":"x","a":1}"#);
        assert_eq!(as_json_line("hello"), r#""hello""#);
    }

    #[test]
    fn acknowledgements_and_refusals_are_told_apart_from_other_messages() {
        let subscribed = r#"{"type":"subscribed","entityId":"order-42"}"#;
        assert_eq!(answer(subscribed), Answer::Subscribed("order-42".into()));
        let refused = r#"{"type":"error","message":"not allowed to subscribe to \"x\""}"#;
        assert_eq!(
            answer(refused),
            Answer::Refused(r#"not allowed to subscribe to "x""#.into())
        );
        for other in [
            r#"{"type":"unsubscribed","entityId":"order-42"}"#,
            r#"{"type":"subscribed"}"#,
            r#"{"type":"entity.updated","entityId":"order-42","message":{}}"#,
            "not json",
        ] {
            assert_eq!(answer(other), Answer::Other, "{other}");
        }
    }
}
