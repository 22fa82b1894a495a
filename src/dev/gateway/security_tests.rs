//! What a caller that is not one of dev's handlers can do to the gateway: a web page posting to
//! the management API, a huge POST, a client trickling its headers, a flood of connections.

use std::io::{Read, Write};
use std::time::Instant;

use super::*;

/// One raw request on a fresh connection; the whole answer (read until the gateway closes).
fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The connection id of the first client, from the `$connect` event its route recorded.
async fn first_connection_id(record: &std::path::Path) -> String {
    let events = wait_for_records(record, 1).await;
    events[0]["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn management_calls_without_the_sessions_credentials_are_refused_and_the_client_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("connects");
    let record_text = record.to_str().unwrap();
    let local = Local::start_in(dir, &[("$connect", &[("RECORD", record_text)])]).await;
    let mut client = local.connect().await;
    let id = first_connection_id(&record).await;
    let encoded = urlencoding::encode(&id).into_owned();
    let address = local.address;

    let other_key = "Authorization: AWS4-HMAC-SHA256 Credential=AKIAOTHERSESSION0000/20260101/us-east-1/\
                     execute-api/aws4_request, SignedHeaders=host, Signature=0\r\n";
    // What a web page can send: a simple POST (text/plain, an Origin), and what a preflight asks.
    let page = "Origin: http://evil.example\r\nContent-Type: text/plain\r\n";
    let answers = tokio::task::spawn_blocking(move || {
        let unsigned = post_answer(address, page, &id, b"from a web page");
        let wrong_key = post_answer(address, other_key, &id, b"from another session");
        let read = exchange(
            address,
            &format!("GET /dev/@connections/{encoded} HTTP/1.1\r\nHost: {address}\r\n{page}Connection: close\r\n\r\n"),
        );
        let close = exchange(
            address,
            &format!("DELETE /dev/@connections/{encoded} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
        );
        let preflight = exchange(
            address,
            &format!(
                "OPTIONS /dev/@connections/{encoded} HTTP/1.1\r\nHost: {address}\r\n{page}\
                 Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\
                 Connection: close\r\n\r\n"
            ),
        );
        [unsigned, wrong_key, read, close, preflight]
    })
    .await
    .unwrap();
    let [unsigned, wrong_key, read, close, preflight] = &answers;
    assert!(unsigned.contains("MissingAuthenticationTokenException"), "{unsigned}");
    assert!(wrong_key.contains("UnrecognizedClientException"), "{wrong_key}");
    for answer in &answers {
        assert_eq!(status_of(answer), 403, "{answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("access-control-allow"),
            "{answer}"
        );
    }
    let _ = (read, close, preflight);
    // Nothing reached the client, and it is still open (the DELETE did not close it).
    let nothing = tokio::time::timeout(Duration::from_millis(500), client.next()).await;
    assert!(nothing.is_err(), "the client got {nothing:?}");

    // Signed with the session's credentials, as dev's handlers sign, the same post arrives.
    let (signed, id) = (local.signed.clone(), first_connection_id(&record).await);
    let status = tokio::task::spawn_blocking(move || post(address, &signed, &id, b"from a handler"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let frame = tokio::time::timeout(Duration::from_secs(5), client.next()).await;
    assert!(
        matches!(&frame, Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "from a handler"),
        "{frame:?}"
    );
}

#[tokio::test]
async fn a_post_over_128_kb_is_refused_with_413_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("connects");
    let record_text = record.to_str().unwrap();
    let local = Local::start_in(dir, &[("$connect", &[("RECORD", record_text)])]).await;
    let _client = local.connect().await;
    let id = urlencoding::encode(&first_connection_id(&record).await).into_owned();
    let (address, signed) = (local.address, local.signed.clone());

    let answers = tokio::task::spawn_blocking(move || {
        // 10 MB announced, not one byte of it sent: the answer comes anyway.
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            stream,
            "POST /dev/@connections/{id} HTTP/1.1\r\nHost: {address}\r\n{signed}Content-Length: 10485760\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 512];
        let read = stream.read(&mut head).unwrap_or(0);
        let announced = String::from_utf8_lossy(&head[..read]).into_owned();

        // No length announced (chunked): refused once more than 128 KB came, not at the end.
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            stream,
            "POST /dev/@connections/{id} HTTP/1.1\r\nHost: {address}\r\n{signed}Transfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..3 {
            write!(stream, "{:x}\r\n", chunk.len()).unwrap();
            stream.write_all(&chunk).unwrap();
            stream.write_all(b"\r\n").unwrap();
        }
        let read = stream.read(&mut head).unwrap_or(0);
        let chunked = String::from_utf8_lossy(&head[..read]).into_owned();
        [announced, chunked]
    })
    .await
    .unwrap();
    for answer in &answers {
        assert_eq!(status_of(answer), 413, "{answer}");
        assert!(answer.contains("PayloadTooLargeException"), "{answer}");
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected_after_the_header_timeout() {
    let local = Local::start_timed(Duration::from_millis(300)).await;
    let address = local.address;
    let (held, answer) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        // Half a header line, then nothing more.
        write!(stream, "GET /dev HTTP/1.1\r\nHost: {address}\r\nUser-Ag").unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        (started.elapsed(), answer)
    })
    .await
    .unwrap();
    assert!(
        held >= Duration::from_millis(250) && held < Duration::from_secs(5),
        "held for {held:?}, answer {:?}",
        String::from_utf8_lossy(&answer)
    );
    // The gateway still serves others.
    let _client = local.connect().await;
}

#[tokio::test]
async fn past_the_http_connection_cap_a_connection_is_answered_503_until_some_close() {
    // Both ends of every connection live in this process: twice the cap in descriptors, more than
    // a soft limit of 1024 allows (dev raises its own the same way).
    crate::dev::fd_limit::raise_to_hard_limit().unwrap();
    let local = Local::start_timed(Duration::from_secs(60)).await;
    let address = local.address;
    let (trickling, refused) = tokio::task::spawn_blocking(move || {
        // Connections that never finish their headers hold every slot.
        let mut trickling = Vec::new();
        for _ in 0..OTHER_HTTP_CONNECTIONS {
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            stream.write_all(b"GET /dev HTTP/1.1\r\n").unwrap();
            trickling.push(stream);
        }
        let refused = exchange(address, &format!("GET /dev HTTP/1.1\r\nHost: {address}\r\n\r\n"));
        (trickling, refused)
    })
    .await
    .unwrap();
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(
        refused.contains(&format!("at most {OTHER_HTTP_CONNECTIONS} HTTP connections"))
            && refused.contains("--max-connections"),
        "{refused}"
    );
    drop(trickling);
    // Their slots come back once the gateway sees them closed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(local.url()).await {
            Ok(_) => break,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "not yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("after the connections closed: {error}"),
        }
    }
}

/// A connection that became a WebSocket gives its HTTP slot back: the fan-out benchmark holds
/// 15,000 of them under the defaults.
#[tokio::test]
async fn websocket_connections_do_not_count_against_the_http_connection_cap() {
    let local = Local::start(&[]).await;
    let mut clients = Vec::new();
    for _ in 0..OTHER_HTTP_CONNECTIONS + 10 {
        clients.push(local.connect().await);
    }
    assert_eq!(clients.len(), OTHER_HTTP_CONNECTIONS + 10);
}
