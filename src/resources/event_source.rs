//! The event source mappings of the push function: the events queue (batch size from the stack
//! file) and the chunk queue (one chunk per invocation), both with `ReportBatchItemFailures`, so one
//! failed record does not redeliver the whole batch; their maximum concurrency (ScalingConfig) is
//! what divides the stack's post budget between invocations.
//! Right after the push role's SQS policy is written, AWS refuses the mapping for a while: retried.
//! A deleted mapping lingers as `Deleting` and blocks a new one of the pair: ignored, waited out.

use std::time::Instant;

use anyhow::{bail, Result};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::create_event_source_mapping::{
    CreateEventSourceMappingError, CreateEventSourceMappingOutput,
};
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType, ScalingConfig};

use super::errors::{deleted, found};
use super::transient;
use super::{Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::sdk_error;
use crate::graph::{Key, QueueKind};
use crate::retry::{eventually, MAPPING_DELETION, ROLE_PROPAGATION};

impl Key {
    /// The push function's event source mapping of a queue: `event-source` for the events queue
    /// (the name it has always had), `event-source/chunks` for the chunk queue.
    pub fn event_source(queue: QueueKind) -> Key {
        match queue {
            QueueKind::Events => Key::one("event-source"),
            other => Key::each("event-source", other.name()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventSourceSpec {
    pub function: String,
    pub queue: QueueKind,
    pub queue_arn: String,
    pub batch_size: i32,
    /// ScalingConfig MaximumConcurrency: push invocations at once.
    pub max_concurrency: i32,
    /// Mappings (UUIDs) a running `wsstack dev` paused because its own poller replaces them:
    /// disabled on purpose, so neither drift nor something for `up` to enable.
    pub paused_by_dev: Vec<String>,
}

/// Every mapping of this queue to this function, by UUID: the first is kept. Two concurrent runs
/// can each create one (AWS refuses the second with ResourceConflictException, moto does not).
pub struct Observed(Vec<EventSourceMappingConfiguration>);

impl EventSourceSpec {
    async fn all(&self, ctx: Ctx<'_>) -> Result<Vec<EventSourceMappingConfiguration>> {
        let call = ctx
            .aws
            .lambda
            .list_event_source_mappings()
            .function_name(&self.function);
        let listed = found(call.event_source_arn(&self.queue_arn).send().await, || {
            format!("listing event sources of {}", self.function)
        })?;
        let mut all = listed.and_then(|o| o.event_source_mappings).unwrap_or_default();
        // DeleteEventSourceMapping is asynchronous: a mapping being deleted stays listed for a
        // while, yet it will never deliver again, so it is neither ours to keep nor to delete.
        all.retain(|m| m.state() != Some("Deleting"));
        all.sort_by(|a, b| a.uuid().cmp(&b.uuid()));
        Ok(all)
    }

    async fn delete_one(&self, ctx: Ctx<'_>, mapping: &EventSourceMappingConfiguration) -> Result<bool> {
        let uuid = mapping.uuid().unwrap_or_default();
        let call = ctx.aws.lambda.delete_event_source_mapping().uuid(uuid);
        deleted(call.send().await, || {
            format!("deleting the event source {uuid} of {}", self.function)
        })
    }

    /// CreateEventSourceMapping, retried while the push role's SQS policy propagates.
    async fn try_create(
        &self,
        ctx: Ctx<'_>,
    ) -> Result<CreateEventSourceMappingOutput, SdkError<CreateEventSourceMappingError, HttpResponse>> {
        eventually(
            ROLE_PROPAGATION,
            transient::role_permissions_lag::<SdkError<CreateEventSourceMappingError, _>>,
            || {
                ctx.aws
                    .lambda
                    .create_event_source_mapping()
                    .function_name(&self.function)
                    .event_source_arn(&self.queue_arn)
                    .batch_size(self.batch_size)
                    .scaling_config(self.scaling_config())
                    .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                    .enabled(true)
                    .send()
            },
        )
        .await
    }

    fn scaling_config(&self) -> ScalingConfig {
        ScalingConfig::builder()
            .maximum_concurrency(self.max_concurrency)
            .build()
    }

    /// Delete every mapping but the first by UUID; every run that looks keeps the same one.
    async fn remove_duplicates(&self, ctx: Ctx<'_>, all: &[EventSourceMappingConfiguration]) -> Result<()> {
        for extra in all.iter().skip(1) {
            self.delete_one(ctx, extra).await?;
        }
        Ok(())
    }
}

impl Lifecycle for EventSourceSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new(
            "event source",
            Key::event_source(self.queue),
            format!("{} queue -> {}", self.queue.name(), self.function),
        )
    }
    /// The push role's policy too: Lambda checks that the role may receive from the queue when
    /// the mapping is created.
    fn depends_on(&self) -> Vec<Key> {
        vec![
            Key::function("push"),
            Key::queue(self.queue),
            Key::role_policy(crate::names::RoleKind::Push),
        ]
    }
    /// Taken down first of the push path: before the function and the queue it connects (the
    /// policy may go meanwhile; nothing polls with it any more).
    fn gone_before(&self) -> Vec<Key> {
        vec![Key::function("push"), Key::queue(self.queue)]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let all = self.all(ctx).await?;
        Ok((!all.is_empty()).then_some(Observed(all)))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        let m = &o.0[0];
        if m.batch_size() != Some(self.batch_size) {
            let current = m.batch_size().map(|b| b.to_string()).unwrap_or_default();
            diffs.push(Diff::new("batch size", current, self.batch_size));
        }
        let concurrency = m.scaling_config().and_then(|s| s.maximum_concurrency());
        if concurrency != Some(self.max_concurrency) {
            let current = concurrency.map_or_else(|| "unset".to_string(), |c| c.to_string());
            diffs.push(Diff::new("maximum concurrency", current, self.max_concurrency));
        }
        let types = m.function_response_types();
        if !types.contains(&FunctionResponseType::ReportBatchItemFailures) {
            diffs.push(Diff::new(
                "response types",
                format!("{types:?}"),
                "[ReportBatchItemFailures]",
            ));
        }
        let state = m.state().unwrap_or_default();
        let paused_by_dev = m
            .uuid()
            .is_some_and(|uuid| self.paused_by_dev.iter().any(|p| p == uuid));
        if matches!(state, "Disabled" | "Disabling") && !paused_by_dev {
            diffs.push(Diff::new("state", state, "Enabled"));
        }
        if o.0.len() > 1 {
            let extra: Vec<&str> = o.0[1..].iter().filter_map(|m| m.uuid()).collect();
            diffs.push(Diff::new("duplicate mappings", extra.join(", "), "(deleted)"));
        }
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let start = Instant::now();
        let mut delay = MAPPING_DELETION.first_delay;
        loop {
            let error = match self.try_create(ctx).await {
                Ok(_) => break,
                Err(e) => e,
            };
            let conflict = error.as_service_error().filter(|e| e.is_resource_conflict_exception());
            let Some(conflict) = conflict else {
                return Err(sdk_error(format!("connecting the queue to {}", self.function), error));
            };
            // Another run may have created one since we looked: all converge on the first by UUID.
            let live = self.all(ctx).await?;
            if !live.is_empty() {
                self.remove_duplicates(ctx, &live).await?;
                return Ok(Created::AlreadyExists);
            }
            // Only the mapping a `down` deleted is in the way: AWS refuses the pair until it is gone.
            let old = conflict
                .message()
                .and_then(|m| m.rsplit_once("UUID "))
                .map(|(_, uuid)| uuid.trim().to_string())
                .unwrap_or_else(|| "(unnamed)".into());
            if start.elapsed() + delay >= MAPPING_DELETION.deadline {
                bail!(
                    "connecting the queue to {}: the previous event source mapping {old} was still being \
                     deleted after {} s; run `wsstack up` again once it is gone",
                    self.function,
                    start.elapsed().as_secs()
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAPPING_DELETION.max_delay);
        }
        self.remove_duplicates(ctx, &self.all(ctx).await?).await?;
        Ok(Created::New(None))
    }

    async fn update(&self, ctx: Ctx<'_>, o: &Observed) -> Result<()> {
        self.remove_duplicates(ctx, &o.0).await?;
        let kept = &o.0[0];
        if self.diffs(ctx, &Observed(vec![kept.clone()])).is_empty() {
            return Ok(());
        }
        ctx.aws
            .lambda
            .update_event_source_mapping()
            .uuid(kept.uuid().unwrap_or_default())
            .batch_size(self.batch_size)
            .scaling_config(self.scaling_config())
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .set_enabled((!self.paused_by_dev.iter().any(|p| Some(p.as_str()) == kept.uuid())).then_some(true))
            .send()
            .await
            .map_err(|e| sdk_error(format!("updating the event source of {}", self.function), e))?;
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        let mut any = false;
        for mapping in &o.0 {
            any |= self.delete_one(ctx, mapping).await?;
        }
        Ok(any)
    }
}
