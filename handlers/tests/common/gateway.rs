//! The stand-in for the API Gateway management API on a loopback port: records every post and
//! answers what a test chooses, for chosen connections or for everyone during a while.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;

use super::serve::{serve, Loopback};
use super::STAGE;

/// One POST to `/{stage}/@connections/{id}` that the stand-in received.
#[derive(Debug, Clone)]
pub struct Post {
    pub connection_id: String,
    pub body: Vec<u8>,
    pub status: u16,
    pub at: std::time::Instant,
}

/// What the stand-in answers a post: status, `x-amzn-ErrorType` and body, as API Gateway sends them.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub error_type: Option<&'static str>,
    pub content_type: &'static str,
    pub body: String,
    /// The body breaks off part way (the connection closes): the client cannot read it.
    pub body_breaks: bool,
}

impl Answer {
    fn json(status: u16, error_type: &'static str, message: &str) -> Answer {
        Answer {
            status,
            error_type: Some(error_type),
            content_type: "application/json",
            body: json!({ "message": message }).to_string(),
            body_breaks: false,
        }
    }

    pub fn gone() -> Answer {
        Answer::json(410, "GoneException", "")
    }

    /// 403 as API Gateway sends it for a connection id of another API or stage (or a denied caller).
    pub fn forbidden() -> Answer {
        Answer::json(403, "ForbiddenException", "Forbidden")
    }

    /// 400 for an id API Gateway cannot read as one of its connections.
    pub fn invalid_connection_id(connection_id: &str) -> Answer {
        Answer::json(
            400,
            "BadRequestException",
            &format!("Invalid connectionId: {connection_id}"),
        )
    }

    /// Any other 400: the same post fails the same way again.
    pub fn bad_request() -> Answer {
        Answer::json(400, "BadRequestException", "Invalid request body")
    }

    pub fn payload_too_large() -> Answer {
        Answer::json(413, "PayloadTooLargeException", "Message too long")
    }

    /// 429: the account-wide API Gateway request quota.
    pub fn throttled() -> Answer {
        Answer::json(429, "LimitExceededException", "Too Many Requests")
    }

    pub fn internal_error() -> Answer {
        Answer::json(500, "InternalServerErrorException", "")
    }

    /// 410 from something in front of the API (a proxy's HTML page): no error type, no JSON.
    pub fn gone_unparsable() -> Answer {
        Answer {
            status: 410,
            error_type: None,
            content_type: "text/html",
            body: "<html><body><h1>410 Gone</h1></body></html>".to_string(),
            body_breaks: false,
        }
    }

    /// 410 whose body breaks off before its announced length: the status arrives, the body never does.
    pub fn gone_truncated() -> Answer {
        Answer {
            body_breaks: true,
            ..Answer::gone()
        }
    }
}

#[derive(Default)]
struct GatewayState {
    posts: Vec<Post>,
    answers: HashMap<String, Answer>,
    /// Answer every post with this for that long, counted from the first post it answers (set
    /// then).
    everyone: Option<(Answer, std::time::Duration, Option<std::time::Instant>)>,
    latency: std::time::Duration,
    in_flight: usize,
    max_in_flight: usize,
}

/// A stand-in for the API Gateway management API on a loopback port.
pub struct Gateway {
    state: Arc<Mutex<GatewayState>>,
    server: Loopback,
}

impl Gateway {
    pub async fn start() -> Gateway {
        let state: Arc<Mutex<GatewayState>> = Arc::default();
        let shared = state.clone();
        let server = serve(move |request| {
            let state = shared.clone();
            async move { answer(&state, request).await }
        })
        .await;
        Gateway { state, server }
    }

    pub fn callback_url(&self) -> String {
        format!("http://{}/{STAGE}", self.server.addr)
    }

    /// Answer 410 GoneException for these connections.
    pub fn set_gone(&self, ids: impl IntoIterator<Item = String>) {
        self.set_answer(ids, Answer::gone());
    }

    /// Answer 500 for these connections.
    pub fn set_failing(&self, ids: impl IntoIterator<Item = String>) {
        self.set_answer(ids, Answer::internal_error());
    }

    /// Answer `answer` to every post to these connections, for as long as the test runs.
    pub fn set_answer(&self, ids: impl IntoIterator<Item = String>, answer: Answer) {
        let mut state = self.state.lock().unwrap();
        for id in ids {
            state.answers.insert(id, answer.clone());
        }
    }

    /// Answer `answer` to every post, whoever it is for, for `period` from the next post on (not
    /// from now: the reads before a first post may take longer than `period` on a loaded machine,
    /// and the test would then see no such answer at all).
    pub fn answer_everyone_for(&self, answer: Answer, period: std::time::Duration) {
        self.state.lock().unwrap().everyone = Some((answer, period, None));
    }

    /// The most posts the stand-in was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// Wait this long before answering each post, like a real round trip to API Gateway.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Every post received, in order, whatever it was answered.
    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }

    /// How many posts to `connection_id` were received, whatever they were answered.
    pub fn posts_to(&self, connection_id: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .posts
            .iter()
            .filter(|post| post.connection_id == connection_id)
            .count()
    }

    /// Posts answered 200.
    pub fn delivered(&self) -> Vec<Post> {
        self.posts().into_iter().filter(|post| post.status == 200).collect()
    }

    /// How many posts each connection received, of those answered 200.
    pub fn delivered_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for post in self.delivered() {
            *counts.entry(post.connection_id).or_insert(0) += 1;
        }
        counts
    }

    /// Posts per second between the first and the last post received.
    pub fn post_rate(&self) -> f64 {
        let posts = self.posts();
        let (Some(first), Some(last)) = (
            posts.iter().map(|post| post.at).min(),
            posts.iter().map(|post| post.at).max(),
        ) else {
            return 0.0;
        };
        (posts.len() - 1) as f64 / (last - first).as_secs_f64()
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().posts.clear();
    }
}

/// The stand-in's response body: whole, or breaking off part way.
type Body = BoxBody<Bytes, std::io::Error>;

async fn answer(state: &Mutex<GatewayState>, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await.unwrap().to_bytes().to_vec();
    let prefix = format!("/{STAGE}/@connections/");
    let Some(connection_id) = path.strip_prefix(&prefix).filter(|_| method == hyper::Method::POST) else {
        return reply(404, None, format!("no route for {method} {path}"));
    };
    let connection_id = percent_decode(connection_id);
    let latency = {
        let mut state = state.lock().unwrap();
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        state.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut state = state.lock().unwrap();
    state.in_flight -= 1;
    let now = std::time::Instant::now();
    if let Some((_, _, since)) = &mut state.everyone {
        since.get_or_insert(now);
    }
    let answer = match &state.everyone {
        Some((answer, period, Some(since))) if now < *since + *period => Some(answer.clone()),
        _ => state.answers.get(&connection_id).cloned(),
    };
    let status = answer.as_ref().map_or(200, |answer| answer.status);
    state.posts.push(Post {
        connection_id,
        body,
        status,
        at: now,
    });
    match answer {
        None => reply(200, None, String::new()),
        Some(answer) => {
            let mut response = Response::builder()
                .status(answer.status)
                .header("content-type", answer.content_type);
            if let Some(error_type) = answer.error_type {
                response = response.header("x-amzn-ErrorType", error_type);
            }
            if !answer.body_breaks {
                return response.body(whole(Bytes::from(answer.body))).unwrap();
            }
            // Announce more than is sent, send the headers and part of the body, then fail the
            // stream: the connection closes mid-body.
            let part = futures::stream::iter([Ok(hyper::body::Frame::data(Bytes::from(answer.body.clone())))]);
            let broken = futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err(std::io::Error::other("the stand-in breaks the body off"))
            });
            response
                .header("content-length", (answer.body.len() + 64).to_string())
                .body(StreamBody::new(futures::StreamExt::chain(part, broken)).boxed())
                .unwrap()
        }
    }
}

fn whole(body: Bytes) -> Body {
    Full::new(body).map_err(|never| match never {}).boxed()
}

fn reply(status: u16, error_type: Option<&str>, message: String) -> Response<Body> {
    let mut response = Response::builder().status(status);
    if let Some(error_type) = error_type {
        response = response.header("x-amzn-ErrorType", error_type);
    }
    let body = if status == 200 {
        Bytes::new()
    } else {
        Bytes::from(json!({ "message": message }).to_string())
    };
    response
        .header("content-type", "application/json")
        .body(whole(body))
        .unwrap()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16) {
                decoded.push(byte);
                index += 3;
                continue;
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).unwrap()
}
