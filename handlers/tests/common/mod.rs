//! Shared test fixtures: a moto-backed table in the seed layout, SDK clients pointed at it with
//! static credentials, realistic Lambda events, records and push settings, a local stand-in for the
//! API Gateway management API that records posts and answers what a test chooses (410, 500, 403,
//! 429, an unparsable body...) for chosen connections or for everyone during a while, and one for
//! the Lambda Runtime API that the built `bootstrap` talks to.

#![allow(dead_code)]

mod gateway;
pub mod runtime_api;
pub mod serve;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, WriteRequest,
};
use serde_json::{json, Value};
use testkit::{Moto, Proxy};
use wsstack_handlers::records::{self, GSI1, GSI1PK, GSI1SK, GSI2, GSI2PK, GSI2SK, PK, SK, TTL};
use wsstack_handlers::{App, Config, PushSettings};

pub const STAGE: &str = "test";
pub const TABLE: &str = "wsstack-test-connections";
/// A ttl no test comes near (2100-01-01).
pub const FAR_TTL: i64 = 4_102_444_800;

/// The SDK configuration every test client uses: moto, us-east-1, static credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .http_client(wsstack_handlers::sdk::http_client())
        .load()
        .await
}

/// A moto server, a table in the seed layout, and a management API stand-in. The handlers reach
/// moto through `proxy`, which counts their calls; fixtures and checks go to moto directly.
pub struct Stack {
    pub moto: Moto,
    pub proxy: Proxy,
    pub gateway: Gateway,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Stack {
    pub async fn start() -> Stack {
        let moto = Moto::start().expect("starting moto");
        let sdk = sdk_config(&moto.endpoint()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        create_table(&dynamodb, TABLE).await;
        let gateway = Gateway::start().await;
        let proxy = Proxy::start(&moto.endpoint()).expect("starting the proxy");
        Stack {
            moto,
            proxy,
            gateway,
            dynamodb,
        }
    }

    /// The handlers' App for this stack; `query_page_limit` forces small query pages.
    pub async fn app(&self, query_page_limit: Option<i32>, push: PushSettings) -> App {
        let sdk = sdk_config(&self.proxy.endpoint()).await;
        let config = Config {
            table_name: TABLE.to_string(),
            ttl_hours: 3,
            callback_url: self.gateway.callback_url(),
            push,
            query_page_limit,
            max_subscriptions: wsstack_handlers::records::DEFAULT_MAX_SUBSCRIPTIONS,
            history_window: None,
            max_replay: wsstack_handlers::config::DEFAULT_MAX_REPLAY,
        };
        App::new(&sdk, config)
    }

    /// How many calls of DynamoDB `operation` the handlers made.
    pub fn calls(&self, operation: &str) -> usize {
        self.proxy
            .calls()
            .iter()
            .filter(|call| call.service == "dynamodb" && call.operation == operation)
            .count()
    }

    /// Every item of the table, keyed by (pk, sk).
    pub async fn items(&self) -> BTreeMap<(String, String), HashMap<String, AttributeValue>> {
        let mut items = BTreeMap::new();
        let mut pages = self
            .dynamodb
            .scan()
            .table_name(TABLE)
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page.expect("scanning the table").items.unwrap_or_default() {
                let key = (string(&item, PK), string(&item, SK));
                items.insert(key, item);
            }
        }
        items
    }

    /// The (pk, sk) of every item.
    pub async fn keys(&self) -> BTreeSet<(String, String)> {
        self.items().await.into_keys().collect()
    }

    /// Writes records directly (fixtures), 25 per BatchWriteItem.
    pub async fn put_items(&self, items: Vec<HashMap<String, AttributeValue>>) {
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item.clone())).build().unwrap())
                        .build()
                })
                .collect();
            while !requests.is_empty() {
                let output = self
                    .dynamodb
                    .batch_write_item()
                    .request_items(TABLE, requests)
                    .send()
                    .await
                    .expect("writing fixture records");
                requests = output
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(TABLE))
                    .unwrap_or_default();
            }
        }
    }
}

#[allow(unused_imports)]
pub use gateway::{Answer, Gateway, Post};
pub use std::collections::BTreeSet;

/// The JSON body of a route's answer (the frame its route response sends the client).
pub fn body_json(response: &ApiGatewayProxyResponse) -> Value {
    match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("no text body: {other:?}"),
    }
}

pub fn string(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(value)) => value.clone(),
        other => panic!("attribute {name} is not a string: {other:?}"),
    }
}

pub fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().unwrap(),
        other => panic!("attribute {name} is not a number: {other:?}"),
    }
}

/// A connection record of an authenticated user, as the $connect handler writes it behind the
/// authorizer: indexed under the user in GSI2.
pub fn user_connection_record(connection_id: &str, user_id: &str, ttl: i64) -> HashMap<String, AttributeValue> {
    let mut record = connection_record(connection_id, ttl);
    record.insert(GSI2PK.to_string(), AttributeValue::S(user_id.into()));
    record.insert(GSI2SK.to_string(), AttributeValue::S(records::CONNECTION_SK.into()));
    record
}

/// A connection record as the $connect handler writes it, with a chosen ttl.
pub fn connection_record(connection_id: &str, ttl: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(connection_id.into())),
        (SK.to_string(), AttributeValue::S(records::CONNECTION_SK.into())),
        (records::IP_ADDRESS.to_string(), AttributeValue::S("203.0.113.9".into())),
        (
            records::CONNECTED_AT.to_string(),
            AttributeValue::N("1700000000000".into()),
        ),
        (TTL.to_string(), AttributeValue::N(ttl.to_string())),
    ])
}

/// A subscription record as the subscribe handler writes it, with a chosen ttl.
pub fn subscription_record(connection_id: &str, entity_id: &str, ttl: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(connection_id.into())),
        (SK.to_string(), AttributeValue::S(records::subscription_sk(entity_id))),
        (GSI1PK.to_string(), AttributeValue::S(entity_id.into())),
        (
            GSI1SK.to_string(),
            AttributeValue::S(records::SUBSCRIPTION_PREFIX.into()),
        ),
        (TTL.to_string(), AttributeValue::N(ttl.to_string())),
    ])
}

/// The table as the CLI declares it (`src/resources/table.rs`, which these tests cannot reach):
/// keys pk/sk, GSI1 (projection ALL) for an entity's subscribers, GSI2 (KEYS_ONLY) for a user's
/// connections.
pub async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, table: &str) {
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let index = |name: &str, pk: &str, sk: &str, projection: ProjectionType| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash))
            .key_schema(key(sk, KeyType::Range))
            .projection(Projection::builder().projection_type(projection).build())
            .build()
            .unwrap()
    };
    dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .set_attribute_definitions(Some([PK, SK, GSI1PK, GSI1SK, GSI2PK, GSI2SK].map(attribute).to_vec()))
        .global_secondary_indexes(index(GSI1, GSI1PK, GSI1SK, ProjectionType::All))
        .global_secondary_indexes(index(GSI2, GSI2PK, GSI2SK, ProjectionType::KeysOnly))
        .send()
        .await
        .expect("creating the table");
}

/// A WebSocket route event as API Gateway sends it to a Lambda proxy integration.
pub fn ws_event(
    route_key: &str,
    connection_id: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> ApiGatewayWebsocketProxyRequest {
    let event_type = match route_key {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
        .collect();
    let mut event = json!({
        "headers": headers,
        "multiValueHeaders": headers.iter().map(|(name, value)| (name.clone(), json!([value]))).collect::<serde_json::Map<_, _>>(),
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": "Qy4kRFWxoAMFWcQ=",
            "requestTime": "26/Nov/2026:00:55:00 +0000",
            "messageDirection": "IN",
            "stage": STAGE,
            "connectedAt": 1_764_118_500_123_i64,
            "requestTimeEpoch": 1_764_118_500_456_i64,
            "identity": { "sourceIp": "203.0.113.7", "userAgent": "wsstack-test" },
            "requestId": "Qy4kRFWxoAMFWcQ=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = Value::String(body.to_string());
        event["requestContext"]["messageId"] = Value::String("Qy4kSfNxoAMCJgA=".into());
    }
    serde_json::from_value(event).expect("a valid WebSocket event fixture")
}

/// An EventBridge envelope of `detail_type` as the rule delivers it to SQS.
pub fn eventbridge_envelope(detail_type: &str, detail: Value) -> String {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "wsstack.test",
        "account": "123456789012",
        "time": "2026-11-26T00:55:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail
    })
    .to_string()
}

/// The envelope of an entity update (the default detail-type).
pub fn eventbridge_body(entity_id: &str, message: &str) -> String {
    eventbridge_envelope("Entity Updated", json!({ "entityId": entity_id, "message": message }))
}

/// An SQS event with one record per (message id, body).
pub fn sqs_event(records: &[(&str, &str)]) -> SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|(message_id, body)| {
            json!({
                "messageId": message_id,
                "receiptHandle": format!("AQEB{message_id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764118500000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764118500010"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wsstack-test-push",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a valid SQS event fixture")
}

/// Connection ids the way API Gateway makes them (12 base64-ish characters ending in `=`).
pub fn connection_id(n: usize) -> String {
    format!("C{n:010}=")
}

/// `count` connections (ids from `first`), each with its connection record and a subscription to
/// `entity_id`.
pub fn subscribers(first: usize, count: usize, entity_id: &str) -> Vec<HashMap<String, AttributeValue>> {
    (first..first + count)
        .flat_map(|n| {
            let id = connection_id(n);
            [
                connection_record(&id, FAR_TTL),
                subscription_record(&id, entity_id, FAR_TTL),
            ]
        })
        .collect()
}

/// A deadline no test here comes near.
pub fn in_a_minute() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(60)
}

/// The default push settings with retries 5 ms apart, so that giving up takes no time.
pub fn quick_retries() -> PushSettings {
    PushSettings {
        base_backoff: Duration::from_millis(5),
        ..PushSettings::default()
    }
}

/// The message ids an invocation handed back in batchItemFailures.
pub fn failed_ids(response: &SqsBatchResponse) -> BTreeSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect()
}
