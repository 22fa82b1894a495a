//! The DynamoDB record layout shared by the handlers and the CLI: key formats, attribute names, the
//! subscriber index and the TTL rule. Written down once here; compatible with the seed stack's layout.
//! Pure data and string functions: no AWS calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Partition key attribute: the connection id for both record kinds.
pub const PK: &str = "pk";
/// Sort key attribute: [`CONNECTION_SK`] or `subscription#{entityId}`.
pub const SK: &str = "sk";
/// Partition key of the subscriber index: the entity id of a subscription record.
pub const GSI1PK: &str = "GSI1PK";
/// Sort key of the subscriber index: always [`SUBSCRIPTION_PREFIX`] on subscription records.
pub const GSI1SK: &str = "GSI1SK";
/// The global secondary index that finds every subscriber of an entity (projection ALL).
pub const GSI1: &str = "GSI1";
/// Partition key of the user index: the user id, on the connection record of an authenticated
/// connection (a stack without `auth:` writes neither GSI2 attribute).
pub const GSI2PK: &str = "GSI2PK";
/// Sort key of the user index: always [`CONNECTION_SK`] on connection records.
pub const GSI2SK: &str = "GSI2SK";
/// The global secondary index that finds every open connection of a user: one Query with
/// `GSI2PK = :user AND GSI2SK = connection#` that reads only the connection id, so projection
/// KEYS_ONLY is enough.
pub const GSI2: &str = "GSI2";
/// Time-to-live attribute, epoch seconds; the table's TTL setting must name it.
pub const TTL: &str = "ttl";
/// Connection record: the client's source IP address.
pub const IP_ADDRESS: &str = "ipAddress";
/// Connection record: when API Gateway accepted the connection, epoch milliseconds.
pub const CONNECTED_AT: &str = "connectedAt";
/// Connection record: how many subscriptions the connection holds, counted by `subscribe` and
/// `unsubscribe` against the stack's maximum. Absent on a connection with none yet.
pub const SUBSCRIPTIONS: &str = "subscriptions";

/// Sort key of the connection record.
pub const CONNECTION_SK: &str = "connection#";
/// Prefix of subscription sort keys, and the GSI1SK value of every subscription record.
pub const SUBSCRIPTION_PREFIX: &str = "subscription#";

/// Default lifetime of records when the stack does not say otherwise.
pub const DEFAULT_TTL_HOURS: u32 = 24;
/// Default most subscriptions of one connection when the stack does not say otherwise.
pub const DEFAULT_MAX_SUBSCRIPTIONS: u32 = 200;

/// The sort key of the subscription of a connection to `entity_id`.
pub fn subscription_sk(entity_id: &str) -> String {
    format!("{SUBSCRIPTION_PREFIX}{entity_id}")
}

/// The entity id of a subscription sort key, `None` for any other sort key.
pub fn entity_of_sk(sk: &str) -> Option<&str> {
    sk.strip_prefix(SUBSCRIPTION_PREFIX)
}

/// What a record's sort key says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Connection,
    Subscription,
    Other,
}

/// Classifies a record by its sort key (`wsstack status` counts connections and subscriptions).
pub fn kind_of_sk(sk: &str) -> RecordKind {
    if sk == CONNECTION_SK {
        RecordKind::Connection
    } else if sk.starts_with(SUBSCRIPTION_PREFIX) {
        RecordKind::Subscription
    } else {
        RecordKind::Other
    }
}

/// The `ttl` value for a record written at `now`: `now + ttl_hours`, in epoch seconds.
pub fn ttl_at(now: SystemTime, ttl_hours: u32) -> i64 {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    now.as_secs() as i64 + i64::from(ttl_hours) * 3600
}

/// The `ttl` value for a record written now.
pub fn ttl_from_now(ttl_hours: u32) -> i64 {
    ttl_at(SystemTime::now(), ttl_hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_keys_carry_the_entity_id() {
        assert_eq!(subscription_sk("order-42"), "subscription#order-42");
    }

    #[test]
    fn sort_keys_say_what_a_record_is() {
        assert_eq!(kind_of_sk(CONNECTION_SK), RecordKind::Connection);
        assert_eq!(kind_of_sk(&subscription_sk("order-42")), RecordKind::Subscription);
        assert_eq!(entity_of_sk(&subscription_sk("order-42")), Some("order-42"));
        assert_eq!(kind_of_sk("something-else"), RecordKind::Other);
        assert_eq!(entity_of_sk(CONNECTION_SK), None);
    }

    #[test]
    fn ttl_is_hours_after_now_in_epoch_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(ttl_at(now, 24), 1_700_000_000 + 86_400);
        assert_eq!(ttl_at(now, 0), 1_700_000_000);
    }
}
