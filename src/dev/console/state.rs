//! The console's picture of the stack's connections: the connections table (what the handlers
//! recorded: user, connected at, subscriptions) joined with the gateway's open sockets (what is
//! really connected). Either alone would mislead: a record whose socket is gone (dev killed, a
//! failed `$disconnect`) stays until its TTL, and a socket's subscriptions live only in the table.
//!
//! Read-only; the record layout comes from the handlers' `records` module.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use wsstack_handlers::records::{self, RecordKind};

use crate::aws::Aws;
use crate::dev::events::iso;
use crate::dev::gateway::Gateway;
use crate::resources::errors::found;

/// Records read at most per snapshot: dev's table holds a developer's handful, and a load test's
/// thousands should not make every refresh a long scan.
const MAX_RECORDS: usize = 5000;
/// Entities listed by subscriber count.
const TOP_ENTITIES: usize = 10;
/// Connections listed (the oldest open ones first): a page cannot show a load test's thousands,
/// and sending them on every refresh would cost more than the refresh is worth.
const LISTED: usize = 500;

#[derive(Default)]
struct Recorded {
    user: Option<String>,
    connected_at: Option<SystemTime>,
    has_connection_record: bool,
    subscriptions: Vec<String>,
}

/// `{"connections": [...], "topEntities": [...], "truncated", "tableError"}` as the page reads it.
pub async fn snapshot(aws: &Aws, gateway: &Gateway) -> Value {
    let (recorded, truncated, table_error) = match read_table(aws).await {
        Ok((recorded, truncated)) => (recorded, truncated, None),
        Err(error) => (BTreeMap::new(), false, Some(format!("{error:#}"))),
    };
    let mut recorded = recorded;
    let mut connections = Vec::new();
    for open in gateway.open_connections() {
        let record = recorded.remove(&open.connection_id).unwrap_or_default();
        connections.push(json!({
            "id": open.connection_id,
            "user": record.user.or(open.principal),
            "connectedAt": iso(open.connected_at),
            "lastActiveAt": iso(open.last_active),
            "sourceIp": open.source_ip,
            "subscriptions": record.subscriptions,
            "open": true,
            "recorded": record.has_connection_record,
        }));
    }
    // Records without a socket: left behind, they still receive pushes (which answer 410).
    for (id, record) in recorded {
        connections.push(json!({
            "id": id,
            "user": record.user,
            "connectedAt": record.connected_at.map(iso),
            "subscriptions": record.subscriptions,
            "open": false,
            "recorded": record.has_connection_record,
        }));
    }
    let mut watchers: HashMap<&str, u64> = HashMap::new();
    for connection in &connections {
        for entity in connection["subscriptions"].as_array().into_iter().flatten() {
            *watchers.entry(entity.as_str().unwrap_or_default()).or_default() += 1;
        }
    }
    let open = connections
        .iter()
        .filter(|connection| connection["open"] == true)
        .count();
    let total = connections.len();
    let mut top: Vec<(&str, u64)> = watchers.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    top.truncate(TOP_ENTITIES);
    let top: Vec<Value> = top
        .into_iter()
        .map(|(entity, subscribers)| json!({"entityId": entity, "subscribers": subscribers}))
        .collect();
    connections.truncate(LISTED);
    json!({
        "at": iso(SystemTime::now()),
        "open": open,
        "total": total,
        "connections": connections,
        "topEntities": top,
        "truncated": truncated,
        "tableError": table_error,
    })
}

/// The table's live records by connection id; `true` when the scan stopped at `MAX_RECORDS`.
async fn read_table(aws: &Aws) -> anyhow::Result<(BTreeMap<String, Recorded>, bool)> {
    let table = aws.names.table();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut by_connection: BTreeMap<String, Recorded> = BTreeMap::new();
    let mut read = 0;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = aws
            .dynamodb
            .scan()
            .table_name(&table)
            .projection_expression("#pk, #sk, #user, #at, #ttl")
            .expression_attribute_names("#pk", records::PK)
            .expression_attribute_names("#sk", records::SK)
            .expression_attribute_names("#user", records::GSI2PK)
            .expression_attribute_names("#at", records::CONNECTED_AT)
            .expression_attribute_names("#ttl", records::TTL)
            .limit((MAX_RECORDS - read).clamp(1, 1000) as i32)
            .set_exclusive_start_key(start.take())
            .send()
            .await;
        let Some(page) = found(page, || format!("reading the connections of table {table}"))? else {
            return Ok((by_connection, false));
        };
        for item in page.items() {
            read += 1;
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let number = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
            };
            if number(records::TTL).is_some_and(|ttl| ttl <= now) {
                continue;
            }
            let (Some(id), Some(sk)) = (text(records::PK), text(records::SK)) else {
                continue;
            };
            // A stream's head, history and event markers (README, "Nothing missed") belong to no
            // connection.
            let kind = records::kind_of_sk(&sk);
            if kind == RecordKind::Other {
                continue;
            }
            let record = by_connection.entry(id).or_default();
            match kind {
                RecordKind::Connection => {
                    record.has_connection_record = true;
                    record.user = text(records::GSI2PK);
                    record.connected_at =
                        number(records::CONNECTED_AT).map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
                }
                RecordKind::Subscription => {
                    if let Some(entity) = records::entity_of_sk(&sk) {
                        record.subscriptions.push(entity.to_string());
                    }
                }
                RecordKind::Other => {}
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => {
                if read >= MAX_RECORDS {
                    return Ok((by_connection, true));
                }
                start = Some(key);
            }
            _ => return Ok((by_connection, false)),
        }
    }
}
