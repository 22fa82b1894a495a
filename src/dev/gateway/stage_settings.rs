//! The stage settings the local gateway applies as API Gateway does: throttling (a token bucket
//! per route key with limits of its own, else the stage's) and access log lines (the JSON of
//! `resources::stage::ACCESS_LOG_FORMAT`, into the stage's access log group in the emulator).
//!
//! Read back from the emulator's stage after `up`, like the routes: what runs locally is what `up`
//! declared. The account-wide quota is not emulated.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use anyhow::Result;
use serde_json::json;

use super::super::events::{Client, Request};
use super::super::logs::LogShipper;
use crate::aws::{sdk_error, Aws};
use crate::resources::stage::{limits, Limits};

/// API Gateway's token bucket: it holds at most `burst` tokens, starts full, refills at `rate`
/// tokens per second; a request takes one or is throttled ("API Gateway throttles requests to
/// your API using the token bucket algorithm, where a token counts for a request", developer
/// guide, "Protect your WebSocket APIs in API Gateway").
#[derive(Debug)]
pub struct Bucket {
    limits: Limits,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    pub fn new(limits: Limits, now: Instant) -> Bucket {
        Bucket {
            limits,
            tokens: f64::from(limits.burst.max(0)),
            refilled: now,
        }
    }

    /// Take a token at `now`; false: the request is throttled.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        let capacity = f64::from(self.limits.burst.max(0));
        self.tokens = (self.tokens + elapsed * self.limits.rate).min(capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The stage's buckets: a route key with settings of its own is throttled by them alone, any
/// other by the stage's default route settings; with neither, nothing is throttled.
#[derive(Debug, Default)]
pub struct Throttles {
    stage: Option<Mutex<Bucket>>,
    routes: HashMap<String, Mutex<Bucket>>,
}

impl Throttles {
    pub fn new(stage: Option<Limits>, routes: impl IntoIterator<Item = (String, Limits)>) -> Throttles {
        let now = Instant::now();
        Throttles {
            stage: stage.map(|l| Mutex::new(Bucket::new(l, now))),
            routes: routes
                .into_iter()
                .map(|(key, l)| (key, Mutex::new(Bucket::new(l, now))))
                .collect(),
        }
    }

    /// Whether a request on `route_key` may go on now.
    pub fn admit(&self, route_key: &str) -> bool {
        match self.routes.get(route_key).or(self.stage.as_ref()) {
            Some(bucket) => bucket.lock().unwrap().take(Instant::now()),
            None => true,
        }
    }
}

/// The `message` of the error frame ([`crate::dev::events::error_frame`]) for a throttled message.
/// API Gateway's documentation says only that throttled clients "may receive 429 Too Many
/// Requests error responses"; the frame has the shape of its other WebSocket error frames
/// (`Forbidden`, `Internal server error`), with the status text of 429 as the message: an
/// emulation, not a copy of a captured frame.
pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";

/// Access log lines of the stage, shipped into its log group in the emulator.
pub struct AccessLogger {
    group: String,
    shipper: LogShipper,
}

/// What one access log line tells.
pub struct Access<'a> {
    pub client: &'a Client,
    pub request: &'a Request,
    pub route_key: &'a str,
    /// CONNECT, MESSAGE or DISCONNECT.
    pub event_type: &'a str,
    pub status: u16,
    pub error: Option<&'a str>,
    pub integration_error: Option<&'a str>,
    pub authorizer_error: Option<&'a str>,
    pub integration_latency_ms: Option<u128>,
}

impl AccessLogger {
    pub fn new(group: String, shipper: LogShipper) -> AccessLogger {
        AccessLogger { group, shipper }
    }

    pub fn write(&self, access: &Access<'_>) {
        self.shipper.line_to_group(&self.group, &access_line(access));
    }
}

/// The line API Gateway would write with `ACCESS_LOG_FORMAT`: the same keys, every value a
/// string, `-` where a variable has no value.
pub fn access_line(a: &Access<'_>) -> String {
    let or_dash = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("-").to_string();
    let at = chrono::DateTime::<chrono::Utc>::from(a.request.at);
    let epoch_ms = a
        .request
        .at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    json!({
        "requestId": a.request.id,
        "connectionId": a.client.connection_id,
        "routeKey": a.route_key,
        "eventType": a.event_type,
        "status": a.status.to_string(),
        "messageId": if a.event_type == "MESSAGE" { a.request.message_id.clone() } else { "-".to_string() },
        "error": or_dash(a.error),
        "integrationError": or_dash(a.integration_error),
        "authorizerError": or_dash(a.authorizer_error),
        "sourceIp": a.client.source_ip,
        "integrationLatency": a.integration_latency_ms.map_or("-".to_string(), |ms| ms.to_string()),
        "requestTime": at.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "requestTimeEpoch": epoch_ms.to_string(),
    })
    .to_string()
}

/// What the local gateway applies of the stage.
#[derive(Default)]
pub struct StageSettings {
    pub throttles: Throttles,
    pub access_log: Option<AccessLogger>,
}

/// The stage's settings as the emulator holds them after `up`.
pub async fn read_back(aws: &Aws, api_id: &str, stage: &str, shipper: LogShipper) -> Result<StageSettings> {
    let found = aws.apigateway.get_stage().api_id(api_id).stage_name(stage).send().await;
    let found = found.map_err(|e| sdk_error(format!("reading stage {stage} of API {api_id}"), e))?;
    let routes: Vec<(String, Limits)> = found
        .route_settings()
        .into_iter()
        .flatten()
        .filter_map(|(key, settings)| limits(settings).map(|l| (key.clone(), l)))
        .collect();
    // `arn:{partition}:logs:{region}:{account}:log-group:{name}`
    let access_log = found
        .access_log_settings()
        .and_then(|a| a.destination_arn())
        .and_then(|arn| arn.split_once(":log-group:"))
        .map(|(_, name)| AccessLogger::new(name.trim_end_matches(":*").to_string(), shipper));
    Ok(StageSettings {
        throttles: Throttles::new(found.default_route_settings().and_then(limits), routes),
        access_log,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_lets_a_burst_through_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(Limits { rate: 2.0, burst: 3 }, start);
        let taken: Vec<bool> = (0..4).map(|_| bucket.take(start)).collect();
        assert_eq!(taken, [true, true, true, false], "the burst, then nothing");
        // Half a second at 2/s is one token; it does not pile up past the burst.
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        let later = start + Duration::from_secs(60);
        let taken = (0..4).filter(|_| bucket.take(later)).count();
        assert_eq!(taken, 3, "a long pause refills to the burst, no more");
    }

    #[test]
    fn a_zero_burst_throttles_everything() {
        let start = Instant::now();
        let mut bucket = Bucket::new(Limits { rate: 100.0, burst: 0 }, start);
        assert!(!bucket.take(start + Duration::from_secs(1)));
    }

    #[test]
    fn a_route_with_its_own_limits_is_throttled_by_them_alone() {
        let throttles = Throttles::new(
            Some(Limits { rate: 0.0, burst: 1 }),
            [("subscribe".to_string(), Limits { rate: 0.0, burst: 2 })],
        );
        assert!(throttles.admit("subscribe"));
        assert!(throttles.admit("subscribe"));
        assert!(!throttles.admit("subscribe"));
        assert!(
            throttles.admit("$connect"),
            "the stage's bucket is untouched by subscribe"
        );
        assert!(!throttles.admit("unsubscribe"));
        assert!(Throttles::default().admit("anything"), "no limits: nothing throttled");
    }

    #[test]
    fn access_lines_carry_the_format_keys() {
        let client = Client {
            connection_id: "c1".into(),
            connected_at: SystemTime::now(),
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            authorizer: None,
        };
        let request = Request::fresh();
        let line = access_line(&Access {
            client: &client,
            request: &request,
            route_key: "subscribe",
            event_type: "MESSAGE",
            status: 429,
            error: Some("Too Many Requests"),
            integration_error: None,
            authorizer_error: None,
            integration_latency_ms: None,
        });
        let line: serde_json::Value = serde_json::from_str(&line).unwrap();
        let format: serde_json::Value =
            serde_json::from_str(crate::resources::stage::ACCESS_LOG_FORMAT).expect("the format is JSON");
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&line), keys(&format));
        assert_eq!(line["status"], "429");
        assert_eq!(line["integrationError"], "-");
        assert_eq!(line["messageId"], request.message_id);
    }
}
