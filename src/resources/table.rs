//! DynamoDB table of connections and subscriptions: keys pk/sk, index GSI1 (GSI1PK, GSI1SK,
//! projection ALL) for an entity's subscribers, index GSI2 (GSI2PK, GSI2SK, KEYS_ONLY) for a
//! user's connections, TTL on `ttl`, the billing mode of the stack file, the stack's tags.
//! GSI2 exists with or without `auth:`, so that turning auth on later changes no table.
//!
//! Key schemas cannot change in place; such drift is reported and `up` refuses to touch it.

mod index;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::errors::{created, deleted, found};
use super::tagging::{self, TagsAt};
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::Key;
use crate::retry::{self, Look, Patience};
use index::{attribute_definitions, Index, INDEXES};

// The record layout is written down once, in the handlers' `records` module.
use wsstack_handlers::records;

impl Key {
    /// The table of connections and subscriptions.
    pub fn table() -> Key {
        Key::one("table")
    }
}
pub const PARTITION_KEY: &str = records::PK;
pub const SORT_KEY: &str = records::SK;
pub const INDEX_NAME: &str = records::GSI1;
pub const INDEX_PARTITION_KEY: &str = records::GSI1PK;
pub const INDEX_SORT_KEY: &str = records::GSI1SK;
pub const TTL_ATTRIBUTE: &str = records::TTL;

/// How long and how often to look for a table to become ACTIVE or to disappear.
const TABLE_WAIT: Patience = Patience {
    first_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(5),
    deadline: Duration::from_secs(300),
};

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: String,
    pub billing: BillingMode,
    pub tags: Tags,
}

pub struct Observed {
    arn: String,
    status: Option<TableStatus>,
    billing: String,
    key_schema: String,
    /// Key schema and projection of each index, by name.
    indexes: std::collections::BTreeMap<String, (String, Option<ProjectionType>)>,
    ttl_enabled: bool,
    ttl_attribute: Option<String>,
    tags: Tags,
}

fn schema_text(elements: &[KeySchemaElement]) -> String {
    let parts: Vec<String> = elements
        .iter()
        .map(|e| format!("{}:{}", e.attribute_name(), e.key_type().as_str()))
        .collect();
    parts.join(",")
}

fn desired_key_schema() -> String {
    format!("{PARTITION_KEY}:HASH,{SORT_KEY}:RANGE")
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("key schema element has its fields")
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition has its fields")
}

impl TableSpec {
    async fn list_tags(&self, aws: &Aws, arn: &str) -> Result<Option<Tags>> {
        let mut tags = Tags::new();
        let mut token = None;
        loop {
            let call = aws.dynamodb.list_tags_of_resource().resource_arn(arn);
            let page = found(call.set_next_token(token).send().await, || {
                format!("listing tags of DynamoDB table {}", self.name)
            })?;
            let Some(page) = page else { return Ok(None) };
            tags.extend(page.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)));
            match page.next_token {
                Some(next) => token = Some(next),
                None => return Ok(Some(tags)),
            }
        }
    }

    async fn wait_active(&self, aws: &Aws) -> Result<()> {
        let look = || async {
            let call = aws.dynamodb.describe_table().table_name(&self.name);
            let output =
                (call.send().await).map_err(|e| sdk_error(format!("waiting for DynamoDB table {}", self.name), e))?;
            let table = output.table;
            let status = table.as_ref().and_then(|t| t.table_status.clone());
            // A new index is usable (and the table updatable again) once it is ACTIVE too.
            let indexes_ready = table.as_ref().is_some_and(|t| {
                t.global_secondary_indexes().iter().all(|i| {
                    i.index_status()
                        .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
                })
            });
            let active = status == Some(TableStatus::Active) && indexes_ready;
            Ok(if active { Look::Done(()) } else { Look::NotYet(status) })
        };
        retry::until(TABLE_WAIT, look, |status, waited| {
            anyhow!("DynamoDB table {} is still {status:?} after {waited:?}", self.name)
        })
        .await
    }

    async fn enable_ttl(&self, aws: &Aws) -> Result<()> {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .expect("TTL specification has its fields");
        aws.dynamodb
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_error(format!("enabling TTL on DynamoDB table {}", self.name), e))?;
        Ok(())
    }

    async fn wait_gone(&self, aws: &Aws) -> Result<()> {
        let look = || async {
            let described = aws.dynamodb.describe_table().table_name(&self.name).send().await;
            let there = found(described, || format!("waiting for DynamoDB table {} to go", self.name))?;
            Ok(if there.is_none() {
                Look::Done(())
            } else {
                Look::NotYet(())
            })
        };
        retry::until(TABLE_WAIT, look, |(), waited| {
            anyhow!("DynamoDB table {} is still there after {waited:?}", self.name)
        })
        .await
    }

    /// CreateTable: `false` when a table of that name is already there.
    async fn create_table(&self, aws: &Aws) -> Result<bool> {
        let result = aws
            .dynamodb
            .create_table()
            .table_name(&self.name)
            .billing_mode(self.billing.clone())
            .set_attribute_definitions(Some(attribute_definitions()))
            .key_schema(key(PARTITION_KEY, KeyType::Hash))
            .key_schema(key(SORT_KEY, KeyType::Range))
            .set_global_secondary_indexes(Some(INDEXES.iter().map(Index::definition).collect()))
            .set_tags(Some(tagging::dynamodb(&self.tags)?))
            .send()
            .await;
        created(result, || format!("creating DynamoDB table {}", self.name))
    }

    /// A table still DELETING (a `down` moments ago) can be neither created again nor reported
    /// gone until it is. Whether it was.
    async fn wait_gone_if_deleting(&self, aws: &Aws) -> Result<bool> {
        match aws.dynamodb.describe_table().table_name(&self.name).send().await {
            Ok(output) if output.table().and_then(|t| t.table_status()) == Some(&TableStatus::Deleting) => {
                self.wait_gone(aws).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Lifecycle for TableSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("DynamoDB table", Key::table(), &self.name).tagged(&self.tags)
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let aws = ctx.aws;
        // One round trip: the three reads only need the name (the ARN follows from it). When
        // the table is missing the others' errors say nothing (the emulator's TTL read answers an
        // error of its own then).
        let arn = aws.arns.table(&self.name);
        let (described, ttl, tags) = futures::join!(
            aws.dynamodb.describe_table().table_name(&self.name).send(),
            aws.dynamodb.describe_time_to_live().table_name(&self.name).send(),
            self.list_tags(aws, &arn)
        );
        let described = found(described, || format!("reading DynamoDB table {}", self.name))?;
        let Some(table) = described.and_then(|o| o.table) else {
            return Ok(None);
        };
        let ttl = found(ttl, || format!("reading the TTL of DynamoDB table {}", self.name))?;
        let (Some(ttl), Some(tags)) = (ttl, tags?) else {
            return Ok(None);
        };
        if table.table_status() == Some(&TableStatus::Deleting) {
            return Ok(None);
        }
        let arn = table.table_arn().map(String::from).unwrap_or(arn);
        let ttl = ttl.time_to_live_description;
        let ttl_enabled = ttl
            .as_ref()
            .and_then(|t| t.time_to_live_status())
            .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
        let indexes = table
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let projection = i.projection().and_then(|p| p.projection_type()).cloned();
                (
                    i.index_name().unwrap_or_default().to_string(),
                    (schema_text(i.key_schema()), projection),
                )
            })
            .collect();
        Ok(Some(Observed {
            status: table.table_status().cloned(),
            billing: table
                .billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|b| b.as_str().to_string())
                .unwrap_or_else(|| "PROVISIONED".into()),
            key_schema: schema_text(table.key_schema()),
            indexes,
            ttl_enabled,
            ttl_attribute: ttl.and_then(|t| t.attribute_name).filter(|_| ttl_enabled),
            tags,
            arn,
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::DynamoDb(o.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if o.key_schema != desired_key_schema() {
            diffs.push(Diff::new("key schema", &o.key_schema, desired_key_schema()));
        }
        if o.billing != self.billing.as_str() {
            diffs.push(Diff::new("billing mode", &o.billing, self.billing.as_str()));
        }
        for index in &INDEXES {
            let field = format!("index {}", index.name);
            let desired = format!("{} {}", index.schema(), index.projection.as_str());
            match o.indexes.get(index.name) {
                None => diffs.push(Diff::new(&field, "(none)", desired)),
                Some((schema, projection))
                    if *schema != index.schema() || projection.as_ref() != Some(&index.projection) =>
                {
                    let current = projection.as_ref().map(|p| p.as_str()).unwrap_or("?");
                    diffs.push(Diff::new(&field, format!("{schema} {current}"), desired))
                }
                Some(_) => {}
            }
        }
        if o.ttl_attribute.as_deref() != Some(TTL_ATTRIBUTE) {
            diffs.push(Diff::new(
                "time to live",
                o.ttl_attribute
                    .as_deref()
                    .map(|a| format!("on `{a}`"))
                    .unwrap_or_else(|| "disabled".into()),
                format!("on `{TTL_ATTRIBUTE}`"),
            ));
        }
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let aws = ctx.aws;
        let mut new = self.create_table(aws).await?;
        // A table still DELETING (a `down` moments ago) is in the way until it is gone.
        if !new && self.wait_gone_if_deleting(aws).await? {
            new = self.create_table(aws).await?;
        }
        // Made by another run, it is usable once ACTIVE too; then it is converged like any other.
        self.wait_active(aws).await?;
        if !new {
            return Ok(Created::AlreadyExists);
        }
        self.enable_ttl(aws).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        let aws = ctx.aws;
        let changed_index = INDEXES.iter().find(|index| {
            observed.indexes.get(index.name).is_some_and(|(schema, projection)| {
                *schema != index.schema() || projection.as_ref() != Some(&index.projection)
            })
        });
        if observed.key_schema != desired_key_schema() || changed_index.is_some() {
            let index = changed_index
                .and_then(|i| {
                    observed
                        .indexes
                        .get(i.name)
                        .map(|(schema, _)| format!("{} {schema}", i.name))
                })
                .unwrap_or_else(|| "as expected".into());
            bail!(
                "DynamoDB table {} has key schema {} (index {index}); changing keys needs a new table: run `wsstack down` first, or fix the table by hand",
                self.name,
                observed.key_schema,
            );
        }
        if observed.status != Some(TableStatus::Active) {
            self.wait_active(aws).await?;
        }
        let mut missing = INDEXES.iter().filter(|i| !observed.indexes.contains_key(i.name));
        // DynamoDB takes one new index per UpdateTable; the billing change rides on the first.
        let mut billing_differs = observed.billing != self.billing.as_str();
        let mut next = missing.next();
        while billing_differs || next.is_some() {
            let mut update = aws.dynamodb.update_table().table_name(&self.name);
            if billing_differs {
                update = update.billing_mode(self.billing.clone());
                billing_differs = false;
            }
            if let Some(index) = next {
                update = update
                    .set_attribute_definitions(Some(attribute_definitions()))
                    .global_secondary_index_updates(index.create_action());
            }
            update
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating DynamoDB table {}", self.name), e))?;
            // The index backfills while CREATING; the table takes no other update until then.
            self.wait_active(aws).await?;
            next = missing.next();
        }
        if observed.ttl_attribute.as_deref() != Some(TTL_ATTRIBUTE) {
            if observed.ttl_enabled {
                bail!(
                    "DynamoDB table {} has TTL on `{}`; AWS allows one TTL change an hour: disable it by hand, then run up again",
                    self.name,
                    observed.ttl_attribute.as_deref().unwrap_or("?")
                );
            }
            self.enable_ttl(aws).await?;
        }
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, _observed: Observed) -> Result<bool> {
        let call = ctx.aws.dynamodb.delete_table().table_name(&self.name);
        if !deleted(call.send().await, || format!("deleting DynamoDB table {}", self.name))? {
            return Ok(false);
        }
        self.wait_gone(ctx.aws).await?;
        Ok(true)
    }

    async fn settle_absent(&self, ctx: Ctx<'_>) -> Result<()> {
        self.wait_gone_if_deleting(ctx.aws).await.map(|_| ())
    }
}
