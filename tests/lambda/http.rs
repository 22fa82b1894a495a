// The HTTP/1.1 client of the Lambda functions the tests compile with rustc at test time (std
// only): tests/conformance/handler.rs takes it with `include!`, tests/own_routes.rs prepends it to
// its handler's source. Not a module of any test target.

/// One HTTP/1.1 request on a fresh connection: the answer's headers (names in lower case) and body.
fn call(host: &str, method: &str, path: &str, body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    call_with(host, method, path, "", body)
}

/// A management API call (`/{stage}/@connections/...` at CALLBACK_URL's host). `wsstack dev`'s
/// management API takes only calls signed with the session's keys, which it gives every function
/// as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; it checks the credential's access key id, not the
/// signature (which std alone cannot compute), so the header names the key and signs nothing.
fn management_call(host: &str, method: &str, path: &str, body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let key = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
    let authorization = format!(
        "Authorization: AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=0\r\n"
    );
    call_with(host, method, path, &authorization, body)
}

/// `call` with `headers` (each line ending in CRLF) besides its own.
fn call_with(host: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    let mut stream = TcpStream::connect(host).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut answer = Vec::new();
    if header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            answer.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header("content-length") {
        answer.resize(length.parse().unwrap(), 0);
        reader.read_exact(&mut answer).unwrap();
    } else {
        reader.read_to_end(&mut answer).unwrap();
    }
    (headers, answer)
}
