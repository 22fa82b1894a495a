//! What a stack costs a month on AWS for a given workload (`wsstack plan --cost`): each service's
//! quantities from the stack file and the workload, times one table of prices. Pure: no AWS calls,
//! no pricing API; the prices are the published on-demand rates of one region, written down here
//! with the date they were read, and the assumptions are the module's constants, each with its why.

use serde::Serialize;

use crate::stack::{Architecture, Stack, Trust};
use wsstack_handlers::division::{chunk_length, direct_limit};

/// The published rates of one region, in US dollars, without free tier or savings plans.
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    pub region: &'static str,
    /// When the rates were read from AWS's pricing pages.
    pub read_on: &'static str,
    /// API Gateway WebSocket messages (32 KB units): per million, the first billion of a month.
    pub messages_per_million: f64,
    /// ... and per million above a billion.
    pub messages_per_million_over_a_billion: f64,
    pub connection_minutes_per_million: f64,
    pub lambda_requests_per_million: f64,
    pub lambda_gb_second_x86_64: f64,
    pub lambda_gb_second_arm64: f64,
    /// DynamoDB on-demand write request units (1 KB each).
    pub write_units_per_million: f64,
    /// DynamoDB on-demand read request units (4 KB strongly consistent, 8 KB eventually).
    pub read_units_per_million: f64,
    /// SQS standard queue requests (64 KB units).
    pub sqs_requests_per_million: f64,
    /// EventBridge custom events put on a bus (64 KB units).
    pub eventbridge_events_per_million: f64,
    /// One standard-resolution CloudWatch alarm for a month.
    pub alarm_month: f64,
    pub log_ingestion_per_gb: f64,
    pub secret_month: f64,
    pub secret_calls_per_ten_thousand: f64,
}

/// US East (N. Virginia), read on 2026-12-06 from aws.amazon.com/{api-gateway,lambda,dynamodb,sqs,
/// eventbridge,cloudwatch,secrets-manager}/pricing. DynamoDB's are the on-demand rates of
/// November 2024 (halved then). Other regions differ by a few percent to a third.
pub const US_EAST_1: Prices = Prices {
    region: "us-east-1",
    read_on: "2026-12-06",
    messages_per_million: 1.00,
    messages_per_million_over_a_billion: 0.80,
    connection_minutes_per_million: 0.25,
    lambda_requests_per_million: 0.20,
    lambda_gb_second_x86_64: 0.000_016_666_7,
    lambda_gb_second_arm64: 0.000_013_333_4,
    write_units_per_million: 0.625,
    read_units_per_million: 0.125,
    sqs_requests_per_million: 0.40,
    eventbridge_events_per_million: 1.00,
    alarm_month: 0.10,
    log_ingestion_per_gb: 0.50,
    secret_month: 0.40,
    secret_calls_per_ten_thousand: 0.05,
};

/// AWS's month for pricing: 730 hours.
pub const HOURS_PER_MONTH: f64 = 730.0;
const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;
/// API Gateway ends every connection after 2 hours: a client that stays connected all month
/// connects (and subscribes) again this often.
const CONNECTION_HOURS: f64 = 2.0;
/// API Gateway meters a message in 32 KB units, SQS and EventBridge in 64 KB units.
const MESSAGE_UNIT: u64 = 32 * 1024;
const QUEUE_UNIT: u64 = 64 * 1024;
/// One record in the table as the subscriber query reads it (keys, index keys, ttl).
const RECORD_BYTES: u64 = 120;
/// A history record besides its frame: keys, `seq`, `expiresAt`, the TTL.
const HISTORY_RECORD_BYTES: u64 = 120;
/// What a route handler or the authorizer takes per invocation: one DynamoDB (or Secrets Manager,
/// kept warm) round trip and the runtime's own work, as measured in `wsstack dev` and on Lambda's
/// published REPORT lines for similar Rust handlers. Lambda bills each millisecond.
const ROUTE_MS: f64 = 25.0;
/// A push invocation's work besides posting: reading the subscribers, the answer.
const PUSH_BASE_MS: f64 = 25.0;
/// One PostToConnection round trip from Lambda; the handler keeps 64 in flight.
const POST_MS: f64 = 15.0;
const POSTS_IN_FLIGHT: f64 = 64.0;
/// Log lines per invocation: START, END, REPORT and the handler's JSON line.
const LOG_BYTES_PER_INVOCATION: f64 = 600.0;
/// The push event sources' idle polling: Lambda keeps 5 long polls (20 s) open on each of the two
/// queues (events and chunks).
const IDLE_POLLERS: f64 = 10.0;
const LONG_POLL_SECONDS: f64 = 20.0;
/// Secrets Manager reads of the authorizer: two (AWSCURRENT, AWSPREVIOUS) every 5 minutes for the
/// one warm instance a steady connection rate keeps.
const SECRET_READS_PER_HOUR: f64 = 2.0 * 12.0;

/// The workload a stack is priced for.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Workload {
    /// Clients connected at every moment of the month.
    pub connections: u64,
    /// Entity events put on the bus per second, on average.
    pub events_per_second: f64,
    /// Subscribers each event is pushed to.
    pub subscribers_per_event: u64,
    /// Subscriptions each connection makes after connecting.
    pub subscriptions_per_connection: u64,
    /// Size of one pushed message.
    pub message_bytes: u64,
}

/// One line of the estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub service: &'static str,
    pub item: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub prices: Prices,
    pub workload: Workload,
    pub lines: Vec<Line>,
    pub total_usd: f64,
}

fn units(bytes: u64, unit: u64) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

/// The monthly cost of `stack` under `workload` at `prices`.
pub fn estimate(stack: &Stack, workload: Workload, prices: &Prices) -> Estimate {
    let w = workload;
    let connections = w.connections as f64;
    let subscriptions = w.subscriptions_per_connection as f64;
    let fan_out = w.subscribers_per_event as f64;
    let authorizer = stack.auth.is_some();
    let secret = stack.auth.as_ref().is_some_and(|auth| auth.trust() == Trust::Secret);
    let push = &stack.handlers.push;

    // Connections: each client's month is HOURS_PER_MONTH / CONNECTION_HOURS connections.
    let lifetimes = connections * HOURS_PER_MONTH / CONNECTION_HOURS;
    let events = w.events_per_second * SECONDS_PER_MONTH;
    let posts = events * fan_out;
    // Divided as the push handler divides it (one event alone in its batch).
    let chunk_size = push.chunk_size as usize;
    let recipients = w.subscribers_per_event as usize;
    let chunks_per_event = if recipients > direct_limit(Some(push.direct_posts_per_second()), chunk_size) {
        let length = chunk_length(
            recipients,
            chunk_size,
            push.max_concurrency as usize,
            Some(push.chunk_posts_per_second()),
        );
        recipients.div_ceil(length) as f64
    } else {
        0.0
    };

    let mut lines = Vec::new();
    let mut line = |service, item, quantity: f64, unit, monthly_usd: f64| {
        lines.push(Line {
            service,
            item,
            quantity,
            unit,
            monthly_usd,
        })
    };

    // API Gateway: every push, and each subscribe frame and its acknowledgement.
    let messages = posts * units(w.message_bytes, MESSAGE_UNIT) + lifetimes * subscriptions * 2.0;
    let first_billion = messages.min(1e9);
    let messages_usd = first_billion / 1e6 * prices.messages_per_million
        + (messages - first_billion) / 1e6 * prices.messages_per_million_over_a_billion;
    line(
        "API Gateway",
        "messages (32 KB units)",
        messages,
        "messages",
        messages_usd,
    );
    let minutes = connections * HOURS_PER_MONTH * 60.0;
    let minutes_usd = minutes / 1e6 * prices.connection_minutes_per_million;
    line("API Gateway", "connection minutes", minutes, "minutes", minutes_usd);

    // Lambda: $connect, $disconnect, each subscribe and the authorizer per connection; one push
    // invocation per event (the queue batches at low rates, so this is an upper bound) and one per
    // chunk of a large fan-out.
    let route_invocations = lifetimes * (2.0 + subscriptions + if authorizer { 1.0 } else { 0.0 });
    let push_invocations = events * (1.0 + chunks_per_event);
    let invocations = route_invocations + push_invocations;
    line(
        "Lambda",
        "requests",
        invocations,
        "requests",
        invocations / 1e6 * prices.lambda_requests_per_million,
    );
    // A push posts POSTS_IN_FLIGHT at a time, and never faster than its share of the budget: the
    // chunk rate for a chunked event, the direct rate for one its first invocation posts itself.
    // Every push invocation, the chunks' too, pays its base time.
    let rate = if chunks_per_event > 0.0 {
        push.chunk_posts_per_second()
    } else {
        push.direct_posts_per_second()
    };
    let posting_ms = (fan_out * POST_MS / POSTS_IN_FLIGHT).max(fan_out / rate * 1e3);
    let seconds = (route_invocations * ROUTE_MS + push_invocations * PUSH_BASE_MS + events * posting_ms) / 1e3;
    let gb_seconds = seconds * f64::from(stack.handlers.memory_mb) / 1024.0;
    let per_gb_second = match stack.handlers.architecture {
        Architecture::X86_64 => prices.lambda_gb_second_x86_64,
        Architecture::Arm64 => prices.lambda_gb_second_arm64,
    };
    line(
        "Lambda",
        "duration",
        gb_seconds,
        "GB-seconds",
        gb_seconds * per_gb_second,
    );

    // DynamoDB: per connection, its record (and the user index's copy) written and deleted, and
    // per subscription the count, the record and the subscriber index's copy written, the record
    // and the copy deleted. Per event, one eventually consistent subscriber query (half a unit per
    // 4 KB); per disconnect, one strongly consistent query of the connection's records.
    let per_connection_writes = 2.0 + 5.0 * subscriptions + if authorizer { 2.0 } else { 0.0 };
    let writes = lifetimes * per_connection_writes;
    let write_usd = writes / 1e6 * prices.write_units_per_million;
    line("DynamoDB", "write request units", writes, "units", write_usd);
    let query_units = units(w.subscribers_per_event * RECORD_BYTES, 4096) * 0.5;
    let reads = events * query_units + lifetimes * units((1 + w.subscriptions_per_connection) * RECORD_BYTES, 4096);
    let read_usd = reads / 1e6 * prices.read_units_per_million;
    line("DynamoDB", "read request units", reads, "units", read_usd);
    // History (README, "Nothing missed"): per event a strongly consistent read of the stream's head
    // and a transaction of three writes (head, the frame kept, the event's marker) at twice the
    // units of plain writes; per subscribe a read of the head (its `seq`, and a replay's start:
    // a client that missed nothing reads no more). What is kept for the window is a few MB at
    // most: its storage is left out.
    if stack.history.window_seconds > 0 {
        let kept = units(w.message_bytes + HISTORY_RECORD_BYTES, 1024);
        let writes = events * 2.0 * (1.0 + kept + 1.0);
        line(
            "DynamoDB",
            "history write request units",
            writes,
            "units",
            writes / 1e6 * prices.write_units_per_million,
        );
        let reads = events + lifetimes * subscriptions;
        line(
            "DynamoDB",
            "history read request units",
            reads,
            "units",
            reads / 1e6 * prices.read_units_per_million,
        );
    }

    // SQS: per event the rule's send, the receive and the delete; per chunk the same (sends go 10
    // to a call); and the idle long polls of the event sources, all month.
    let event_units = units(w.message_bytes, QUEUE_UNIT);
    let chunk_requests = events * (2.0 * chunks_per_event + (chunks_per_event / 10.0).ceil());
    let idle_polls = IDLE_POLLERS * SECONDS_PER_MONTH / LONG_POLL_SECONDS;
    let sqs = events * 3.0 * event_units + chunk_requests + idle_polls;
    line(
        "SQS",
        "requests (64 KB units)",
        sqs,
        "requests",
        sqs / 1e6 * prices.sqs_requests_per_million,
    );

    let bus = events * event_units;
    line(
        "EventBridge",
        "custom events (64 KB units)",
        bus,
        "events",
        bus / 1e6 * prices.eventbridge_events_per_million,
    );

    line("CloudWatch", "dead-letter alarm", 1.0, "alarms", prices.alarm_month);
    let log_gb = invocations * LOG_BYTES_PER_INVOCATION / 1e9;
    line(
        "CloudWatch",
        "log ingestion",
        log_gb,
        "GB",
        log_gb * prices.log_ingestion_per_gb,
    );

    if secret {
        line("Secrets Manager", "stack secret", 1.0, "secrets", prices.secret_month);
        let reads = SECRET_READS_PER_HOUR * HOURS_PER_MONTH;
        line(
            "Secrets Manager",
            "secret reads",
            reads,
            "calls",
            reads / 1e4 * prices.secret_calls_per_ten_thousand,
        );
    }

    let total_usd = lines.iter().map(|l| l.monthly_usd).sum();
    Estimate {
        prices: prices.clone(),
        workload,
        lines,
        total_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(text: &str) -> Stack {
        crate::stack::parse(std::path::Path::new("s.yaml"), text).unwrap()
    }

    fn cost(estimate: &Estimate, item: &str) -> f64 {
        estimate.lines.iter().find(|l| l.item == item).unwrap().monthly_usd
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    /// The shipped stack at 10,000 connections, 5 events/s to 100 subscribers each, against a
    /// computation by hand.
    #[test]
    fn the_shipped_stack_at_ten_thousand_connections_matches_a_hand_computation() {
        let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stack.yaml")).unwrap();
        let stack = stack(&shipped);
        let workload = Workload {
            connections: 10_000,
            events_per_second: 5.0,
            subscribers_per_event: 100,
            subscriptions_per_connection: 1,
            message_bytes: 512,
        };
        let estimate = estimate(&stack, workload, &US_EAST_1);
        // 5/s over 2,628,000 s: 13,140,000 events, 1,314,000,000 pushes; 10,000 clients reconnect
        // every 2 h: 3,650,000 connections, each with a subscribe and its acknowledgement.
        // 1,321,300,000 messages: 1,000 $ for the first billion, 321.3 M at 0.80 $.
        assert!(close(cost(&estimate, "messages (32 KB units)"), 1000.0 + 257.04));
        // 10,000 x 43,800 minutes = 438 M at 0.25 $.
        assert!(close(cost(&estimate, "connection minutes"), 109.5));
        // 100 subscribers are more than the 5 posts an events invocation makes itself (a quarter
        // of a second at 5% of 2,000 posts/s over 5): three chunks of at most 38 (a tenth of a
        // second at 95% of 2,000 over 5, 380/s). 3,650,000 x 3 route invocations + 13,140,000 x 4
        // pushes = 63,510,000 at 0.20 $/M.
        assert!(close(cost(&estimate, "requests"), 12.702));
        // Routes 10,950,000 x 25 ms = 273,750 s; pushes 52,560,000 x 25 ms = 1,314,000 s and
        // 13,140,000 x 100 posts at 380/s; x 0.25 GB x 0.0000166667 $.
        let seconds = 273_750.0 + 1_314_000.0 + 13_140_000.0 * 100.0 / 380.0;
        assert!(close(cost(&estimate, "duration"), seconds * 0.25 * 0.000_016_666_7));
        // 3,650,000 x (2 + 5) write units at 0.625 $/M.
        assert!(close(cost(&estimate, "write request units"), 15.96875));
        // 13,140,000 x 1.5 (12,000 bytes: 3 x 4 KB, halved) + 3,650,000 x 1, at 0.125 $/M.
        assert!(close(
            cost(&estimate, "read request units"),
            (19_710_000.0 + 3_650_000.0) * 0.125 / 1e6
        ));
        // 13,140,000 x 3 + 13,140,000 x (3 chunks received and deleted + 1 SendMessageBatch) +
        // 1,314,000 idle polls (two queues) = 132,714,000 at 0.40 $/M.
        assert!(close(cost(&estimate, "requests (64 KB units)"), 53.0856));
        assert!(close(cost(&estimate, "custom events (64 KB units)"), 13.14));
        assert!(close(cost(&estimate, "dead-letter alarm"), 0.10));
        // 63,510,000 invocations x 600 bytes = 38.106 GB at 0.50 $.
        assert!(close(cost(&estimate, "log ingestion"), 19.053));
        // History: 13,140,000 x 2 x 3 write units (a 512-byte frame is one 1 KB unit), and
        // 13,140,000 head reads + 3,650,000 subscribes' reads.
        assert!(close(
            cost(&estimate, "history write request units"),
            78_840_000.0 * 0.625 / 1e6
        ));
        assert!(close(
            cost(&estimate, "history read request units"),
            16_790_000.0 * 0.125 / 1e6
        ));
        assert!(!estimate.lines.iter().any(|l| l.service == "Secrets Manager"));
        let sum: f64 = estimate.lines.iter().map(|l| l.monthly_usd).sum();
        assert!(close(estimate.total_usd, sum));
        assert!(
            (1_550.0..1_560.0).contains(&estimate.total_usd),
            "{}",
            estimate.total_usd
        );
    }

    #[test]
    fn a_large_fan_out_pays_for_its_chunks_and_auth_for_its_authorizer_and_secret() {
        let plain = stack("name: demo\n");
        let with_auth = stack("name: demo\nauth:\n  secret: generated\n");
        let workload = Workload {
            connections: 1_000,
            events_per_second: 1.0,
            subscribers_per_event: 2_500,
            subscriptions_per_connection: 2,
            message_bytes: 40_000,
        };
        let plain = estimate(&plain, workload, &US_EAST_1);
        let auth = estimate(&with_auth, workload, &US_EAST_1);
        // 2,500 subscribers in five chunks of 500, one per invocation of the chunk queue: five chunk
        // invocations besides the event's own.
        let events = SECONDS_PER_MONTH;
        let lifetimes = 1_000.0 * 365.0;
        let requests = plain.lines.iter().find(|l| l.item == "requests").unwrap().quantity;
        assert!(close(requests, lifetimes * 4.0 + events * 6.0));
        // A 40,000-byte message is two 32 KB units.
        let messages = plain
            .lines
            .iter()
            .find(|l| l.item == "messages (32 KB units)")
            .unwrap()
            .quantity;
        assert!(close(messages, events * 2_500.0 * 2.0 + lifetimes * 2.0 * 2.0));
        let auth_requests = auth.lines.iter().find(|l| l.item == "requests").unwrap().quantity;
        assert!(close(auth_requests - requests, lifetimes));
        assert!(auth.lines.iter().any(|l| l.item == "stack secret"));
        assert!(auth.total_usd > plain.total_usd);
        // The 40,000-byte frame kept for the window is 40 write units (twice, in a transaction).
        let history = plain
            .lines
            .iter()
            .find(|l| l.item == "history write request units")
            .unwrap()
            .quantity;
        assert!(close(history, events * 2.0 * (1.0 + 40.0 + 1.0)));
    }

    #[test]
    fn a_stack_without_history_pays_nothing_for_it() {
        let workload = Workload {
            connections: 100,
            events_per_second: 1.0,
            subscribers_per_event: 10,
            subscriptions_per_connection: 1,
            message_bytes: 100,
        };
        let off = estimate(
            &stack("name: demo\nhistory: {window_seconds: 0}\n"),
            workload,
            &US_EAST_1,
        );
        let on = estimate(&stack("name: demo\n"), workload, &US_EAST_1);
        assert!(!off.lines.iter().any(|l| l.item.starts_with("history")));
        let history: f64 = on
            .lines
            .iter()
            .filter(|l| l.item.starts_with("history"))
            .map(|l| l.monthly_usd)
            .sum();
        assert!(close(on.total_usd - off.total_usd, history));
        assert!(history > 0.0);
    }
}
