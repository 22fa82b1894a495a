//! DynamoDB reads and writes of connection and subscription records, in the layout of
//! [`crate::records`]. Every call names the table and key in its error and says whether another
//! attempt may pass; paging and `UnprocessedItems` are handled here so that handlers never see a
//! partial result.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, WriteRequest,
};

use crate::error::{FailureKind, HandlerError, SdkResultExt};
use crate::frames::PushEvent;
use crate::records::{
    self, CONNECTED_AT, CONNECTION_SK, GSI1, GSI1PK, GSI1SK, GSI2, GSI2PK, GSI2SK, IP_ADDRESS, PK, SK, SUBSCRIPTIONS,
    SUBSCRIPTION_PREFIX, TTL,
};
use crate::App;

type Result<T> = std::result::Result<T, HandlerError>;

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit of requests in one BatchWriteItem call.
const BATCH_WRITE_LIMIT: usize = 25;
/// Attempts at writing the unprocessed part of a batch before giving up.
const BATCH_WRITE_ATTEMPTS: u32 = 8;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Stores (or replaces) the connection record; with a user id, indexed under it in GSI2.
pub async fn put_connection(
    app: &App,
    connection_id: &str,
    ip_address: Option<&str>,
    connected_at_ms: i64,
    user_id: Option<&str>,
) -> Result<()> {
    let mut request = app
        .dynamodb
        .put_item()
        .table_name(app.table())
        .item(PK, s(connection_id))
        .item(SK, s(CONNECTION_SK))
        .item(CONNECTED_AT, n(connected_at_ms))
        .item(TTL, n(records::ttl_from_now(app.config.ttl_hours)));
    if let Some(ip_address) = ip_address {
        request = request.item(IP_ADDRESS, s(ip_address));
    }
    if let Some(user_id) = user_id {
        request = request.item(GSI2PK, s(user_id)).item(GSI2SK, s(CONNECTION_SK));
    }
    request
        .send()
        .await
        .or_fail(|| format!("storing connection {connection_id} in table {}", app.table()))?;
    Ok(())
}

/// What [`put_subscription`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// The subscription is stored (or was already).
    Stored,
    /// The connection already holds this many subscriptions, the most it may: nothing written.
    AtLimit(u32),
}

/// Stores the subscription of `connection_id` to `entity_id` and pushes the connection record's
/// ttl forward, unless the connection already holds `max` subscriptions. A connection record that
/// is already gone (expired, or disconnected meanwhile) is not recreated.
///
/// The connection record counts its subscriptions: the count takes its place first, in the same
/// write as the ttl, conditioned on the maximum, and the subscription is written after. A
/// subscription that was already there gives its place back; a failure between the two writes
/// leaves the count one too high, which refuses early rather than letting a connection past its
/// maximum (the count ends with the connection).
pub async fn put_subscription(app: &App, connection_id: &str, entity_id: &str, max: u32) -> Result<Subscribed> {
    let ttl = records::ttl_from_now(app.config.ttl_hours);
    let counted = app
        .dynamodb
        .update_item()
        .table_name(app.table())
        .key(PK, s(connection_id))
        .key(SK, s(CONNECTION_SK))
        .update_expression("SET #ttl = :ttl ADD #count :one")
        .condition_expression("attribute_exists(#pk) AND (attribute_not_exists(#count) OR #count < :max)")
        .expression_attribute_names("#ttl", TTL)
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#count", SUBSCRIPTIONS)
        .expression_attribute_values(":ttl", n(ttl))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":max", n(i64::from(max)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let counted = match counted {
        Ok(_) => true,
        Err(error) => match error.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(failed)) => match failed.item() {
                // The record is there, so its count is at the maximum: only a subscription the
                // connection holds already may be renewed.
                Some(record) => {
                    let held = record
                        .get(SUBSCRIPTIONS)
                        .and_then(|count| count.as_n().ok())
                        .and_then(|count| count.parse().ok())
                        .unwrap_or(max);
                    if renew_subscription(app, connection_id, entity_id, ttl).await? {
                        return Ok(Subscribed::Stored);
                    }
                    return Ok(Subscribed::AtLimit(held));
                }
                None => {
                    tracing::warn!(connection_id, "subscribed without a connection record");
                    false
                }
            },
            _ => {
                return Err(HandlerError::sdk(
                    error,
                    format!(
                        "counting the subscriptions of connection {connection_id} in table {}",
                        app.table()
                    ),
                ))
            }
        },
    };
    let put = app
        .dynamodb
        .put_item()
        .table_name(app.table())
        .item(PK, s(connection_id))
        .item(SK, s(records::subscription_sk(entity_id)))
        .item(GSI1PK, s(entity_id))
        .item(GSI1SK, s(SUBSCRIPTION_PREFIX))
        .item(TTL, n(ttl))
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    let put = match put {
        Ok(put) => put,
        Err(error) => {
            if counted {
                release_place(app, connection_id).await;
            }
            return Err(HandlerError::sdk(
                error,
                format!(
                    "storing subscription of {connection_id} to {entity_id:?} in table {}",
                    app.table()
                ),
            ));
        }
    };
    if counted && put.attributes.is_some_and(|old| !old.is_empty()) {
        // Subscribed before: that subscription holds its place already.
        release_place(app, connection_id).await;
    }
    Ok(Subscribed::Stored)
}

/// Pushes the ttl of a subscription the connection holds (and of its connection record) forward;
/// `false`, writing nothing, when it holds none to `entity_id`.
async fn renew_subscription(app: &App, connection_id: &str, entity_id: &str, ttl: i64) -> Result<bool> {
    let renew = |sk: String| {
        app.dynamodb
            .update_item()
            .table_name(app.table())
            .key(PK, s(connection_id))
            .key(SK, s(sk))
            .update_expression("SET #ttl = :ttl")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":ttl", n(ttl))
            .send()
    };
    match renew(records::subscription_sk(entity_id)).await {
        Ok(_) => {}
        Err(error) if condition_failed(&error) => return Ok(false),
        Err(error) => {
            return Err(HandlerError::sdk(
                error,
                format!(
                    "renewing subscription of {connection_id} to {entity_id:?} in table {}",
                    app.table()
                ),
            ))
        }
    }
    match renew(CONNECTION_SK.to_string()).await {
        Ok(_) => Ok(true),
        // Disconnected meanwhile: its `$disconnect` deletes the subscription.
        Err(error) if condition_failed(&error) => Ok(true),
        Err(error) => Err(HandlerError::sdk(
            error,
            format!(
                "refreshing the ttl of connection {connection_id} in table {}",
                app.table()
            ),
        )),
    }
}

/// Whether an UpdateItem was refused by its condition expression.
fn condition_failed(error: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, HttpResponse>) -> bool {
    error
        .as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

/// Gives one subscription's place back in the connection record's count. Best effort: a count
/// left one too high refuses early, and a gone connection record is not recreated.
async fn release_place(app: &App, connection_id: &str) {
    let released = app
        .dynamodb
        .update_item()
        .table_name(app.table())
        .key(PK, s(connection_id))
        .key(SK, s(CONNECTION_SK))
        .update_expression("ADD #count :minus_one")
        .condition_expression("attribute_exists(#pk) AND #count > :zero")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#count", SUBSCRIPTIONS)
        .expression_attribute_values(":minus_one", n(-1))
        .expression_attribute_values(":zero", n(0))
        .send()
        .await;
    if let Err(error) = released {
        if !condition_failed(&error) {
            tracing::warn!(connection_id, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error), "could not release a subscription's place in the count");
        }
    }
}

/// Deletes the subscription of `connection_id` to `entity_id` and gives its place in the count
/// back; absent is fine.
pub async fn delete_subscription(app: &App, connection_id: &str, entity_id: &str) -> Result<()> {
    let deleted = app
        .dynamodb
        .delete_item()
        .table_name(app.table())
        .key(PK, s(connection_id))
        .key(SK, s(records::subscription_sk(entity_id)))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .or_fail(|| {
            format!(
                "deleting subscription of {connection_id} to {entity_id:?} from table {}",
                app.table()
            )
        })?;
    if deleted.attributes.is_some_and(|old| !old.is_empty()) {
        release_place(app, connection_id).await;
    }
    Ok(())
}

/// Deletes every record of a connection (its connection record and all its subscriptions), reading
/// all pages and retrying unprocessed deletes. Returns how many records were deleted.
pub async fn delete_connection_records(app: &App, connection_id: &str) -> Result<usize> {
    let mut keys: Vec<Item> = Vec::new();
    let mut pages = app
        .dynamodb
        .query()
        .table_name(app.table())
        .key_condition_expression("#pk = :pk")
        .projection_expression("#pk, #sk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(connection_id))
        .consistent_read(true)
        .set_limit(app.config.query_page_limit)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.or_fail(|| {
            format!(
                "listing the records of connection {connection_id} in table {}",
                app.table()
            )
        })?;
        keys.extend(page.items.unwrap_or_default());
    }
    let count = keys.len();
    for chunk in keys.chunks(BATCH_WRITE_LIMIT) {
        let requests = chunk
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(|error| HandlerError::new(FailureKind::Permanent, error))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>>>()?;
        batch_write(app, requests).await.map_err(|error| HandlerError {
            kind: error.kind,
            error: error
                .error
                .context(format!("deleting the records of connection {connection_id}")),
        })?;
    }
    Ok(count)
}

/// One BatchWriteItem of at most 25 requests, resending `UnprocessedItems` with backoff.
async fn batch_write(app: &App, mut requests: Vec<WriteRequest>) -> Result<()> {
    let mut backoff = Duration::from_millis(50);
    for attempt in 1..=BATCH_WRITE_ATTEMPTS {
        let output = app
            .dynamodb
            .batch_write_item()
            .request_items(app.table(), requests)
            .send()
            .await
            .or_fail(|| format!("BatchWriteItem on table {}", app.table()))?;
        requests = output
            .unprocessed_items
            .and_then(|mut unprocessed| unprocessed.remove(app.table()))
            .unwrap_or_default();
        if requests.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            attempt,
            unprocessed = requests.len(),
            "BatchWriteItem left items unprocessed; retrying"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(HandlerError::new(
        FailureKind::Retryable,
        anyhow::anyhow!(
            "{} deletes still unprocessed after {BATCH_WRITE_ATTEMPTS} attempts",
            requests.len()
        ),
    ))
}

/// Every connection subscribed to `entity_id`, from index GSI1, all pages.
pub async fn subscribers(app: &App, entity_id: &str) -> Result<Vec<String>> {
    Recipients::of_entity(app, entity_id, None).all().await
}

/// Every open connection of `user_id`, from index GSI2, all pages.
pub async fn connections_of_user(app: &App, user_id: &str) -> Result<Vec<String>> {
    Recipients::of_user(app, user_id, None).all().await
}

/// One exact key of a secondary index: (attribute, value) for its partition and sort keys.
struct IndexKey<'a> {
    index: &'static str,
    partition: (&'a str, &'a str),
    sort: (&'a str, &'a str),
}

type QueryPages = aws_smithy_async::future::pagination_stream::PaginationStream<
    std::result::Result<
        aws_sdk_dynamodb::operation::query::QueryOutput,
        aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::query::QueryError, HttpResponse>,
    >,
>;

/// The connection ids (`pk`) of the records under one key of a secondary index, a Query page at a
/// time: the push handler hands the first pages of a large fan-out on as chunks while it reads the
/// next ones.
pub struct Recipients<'a> {
    app: &'a App,
    index: &'static str,
    /// Names the records in errors.
    what: String,
    pages: QueryPages,
}

impl<'a> Recipients<'a> {
    /// The recipients of `event`: the subscribers of its entity (GSI1), or the open connections of
    /// its user (GSI2), in pages of at most `page_limit` items as well as DynamoDB's 1 MB (the
    /// stack's `query_page_limit`, when set, instead).
    pub fn of(app: &'a App, event: &PushEvent, page_limit: Option<i32>) -> Recipients<'a> {
        match event {
            PushEvent::Entity(event) => Recipients::of_entity(app, &event.entity_id, page_limit),
            PushEvent::User(event) => Recipients::of_user(app, &event.user_id, page_limit),
        }
    }

    fn of_entity(app: &'a App, entity_id: &str, page_limit: Option<i32>) -> Recipients<'a> {
        let key = IndexKey {
            index: GSI1,
            partition: (GSI1PK, entity_id),
            sort: (GSI1SK, SUBSCRIPTION_PREFIX),
        };
        Recipients::under(app, key, page_limit, format!("subscribers of {entity_id:?}"))
    }

    fn of_user(app: &'a App, user_id: &str, page_limit: Option<i32>) -> Recipients<'a> {
        let key = IndexKey {
            index: GSI2,
            partition: (GSI2PK, user_id),
            sort: (GSI2SK, CONNECTION_SK),
        };
        Recipients::under(app, key, page_limit, format!("connections of user {user_id:?}"))
    }

    fn under(app: &'a App, key: IndexKey<'_>, page_limit: Option<i32>, what: String) -> Recipients<'a> {
        let pages = app
            .dynamodb
            .query()
            .table_name(app.table())
            .index_name(key.index)
            .key_condition_expression("#gpk = :partition AND #gsk = :sort")
            .projection_expression("#pk")
            .expression_attribute_names("#gpk", key.partition.0)
            .expression_attribute_names("#gsk", key.sort.0)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":partition", s(key.partition.1))
            .expression_attribute_values(":sort", s(key.sort.1))
            .set_limit(app.config.query_page_limit.or(page_limit))
            .into_paginator()
            .send();
        Recipients {
            app,
            index: key.index,
            what,
            pages,
        }
    }

    /// The connection ids of the next page; `None` once every page was read.
    pub async fn next_page(&mut self) -> Option<Result<Vec<String>>> {
        let page = self.pages.next().await?;
        Some(
            page.or_fail(|| {
                format!(
                    "querying {} of table {} for {}",
                    self.index,
                    self.app.table(),
                    self.what
                )
            })
            .map(|page| {
                (page.items.unwrap_or_default().into_iter())
                    .filter_map(|mut item| match item.remove(PK) {
                        Some(AttributeValue::S(connection_id)) => Some(connection_id),
                        _ => None,
                    })
                    .collect()
            }),
        )
    }

    /// Every page's connection ids.
    pub async fn all(mut self) -> Result<Vec<String>> {
        let mut connection_ids = Vec::new();
        while let Some(page) = self.next_page().await {
            connection_ids.extend(page?);
        }
        Ok(connection_ids)
    }
}
