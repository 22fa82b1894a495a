//! The event source mapping from the events queue to the push function: batch size from the stack
//! file and `ReportBatchItemFailures`, so one failed record does not redeliver the whole batch.
//! Right after the push role's SQS policy is written, AWS refuses the mapping for a while: retried.

use anyhow::Result;
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{Change, Diff, Resource, State};
use crate::aws::{sdk_error, Aws};
use crate::retry::{eventually, ROLE_PROPAGATION};

#[derive(Debug, Clone)]
pub struct EventSourceSpec {
    pub key: String,
    pub function: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub depends_on: Vec<String>,
}

impl EventSourceSpec {
    /// The mapping to keep (the first by UUID) and any duplicates: two concurrent runs can each
    /// create one (AWS refuses the second with ResourceConflictException, moto does not).
    async fn observe(&self, aws: &Aws) -> Result<Option<EventSourceMappingConfiguration>> {
        let mut all = self.observe_all(aws).await?;
        Ok((!all.is_empty()).then(|| all.remove(0)))
    }

    async fn observe_all(&self, aws: &Aws) -> Result<Vec<EventSourceMappingConfiguration>> {
        let mut all = match aws
            .lambda
            .list_event_source_mappings()
            .function_name(&self.function)
            .event_source_arn(&self.queue_arn)
            .send()
            .await
        {
            Ok(output) => output.event_source_mappings.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Vec::new()
            }
            Err(e) => return Err(sdk_error(format!("listing event sources of {}", self.function), e)),
        };
        all.sort_by(|a, b| a.uuid().cmp(&b.uuid()));
        Ok(all)
    }

    /// Delete every mapping of this queue and function but the first by UUID; every run that
    /// looks keeps the same one.
    async fn remove_duplicates(&self, aws: &Aws) -> Result<()> {
        for extra in self.observe_all(aws).await?.iter().skip(1) {
            self.delete(aws, extra.uuid().unwrap_or_default()).await?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, uuid: &str) -> Result<bool> {
        match aws.lambda.delete_event_source_mapping().uuid(uuid).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(
                format!("deleting the event source {uuid} of {}", self.function),
                e,
            )),
        }
    }

    fn diffs(&self, m: &EventSourceMappingConfiguration) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if m.batch_size() != Some(self.batch_size) {
            diffs.push(Diff::new(
                "batch size",
                m.batch_size().map(|b| b.to_string()).unwrap_or_default(),
                self.batch_size,
            ));
        }
        if !m
            .function_response_types()
            .contains(&FunctionResponseType::ReportBatchItemFailures)
        {
            diffs.push(Diff::new(
                "response types",
                format!("{:?}", m.function_response_types()),
                "[ReportBatchItemFailures]",
            ));
        }
        let state = m.state().unwrap_or_default();
        if matches!(state, "Disabled" | "Disabling") {
            diffs.push(Diff::new("state", state, "Enabled"));
        }
        diffs
    }

    async fn inspect_mapping(&self, aws: &Aws) -> Result<State> {
        Ok(match self.observe(aws).await? {
            None => State::Missing,
            Some(m) => State::from_diffs(self.diffs(&m)),
        })
    }

    async fn ensure_mapping(&self, aws: &Aws) -> Result<Change> {
        let Some(mapping) = self.observe(aws).await? else {
            let created = eventually(
                ROLE_PROPAGATION,
                |e: &aws_sdk_lambda::error::SdkError<
                    aws_sdk_lambda::operation::create_event_source_mapping::CreateEventSourceMappingError,
                    _,
                >| {
                    e.as_service_error().is_some_and(|e| {
                        e.is_invalid_parameter_value_exception()
                            && aws_sdk_lambda::error::ProvideErrorMetadata::message(e)
                                .is_some_and(|m| m.contains("execution role does not have permissions"))
                    })
                },
                || {
                    aws.lambda
                        .create_event_source_mapping()
                        .function_name(&self.function)
                        .event_source_arn(&self.queue_arn)
                        .batch_size(self.batch_size)
                        .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                        .enabled(true)
                        .send()
                },
            )
            .await;
            match created {
                Ok(_) => {}
                // Another run created it since we looked.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_conflict_exception()) => {}
                Err(e) => return Err(sdk_error(format!("connecting the queue to {}", self.function), e)),
            }
            self.remove_duplicates(aws).await?;
            return Ok(Change::Created);
        };
        self.remove_duplicates(aws).await?;
        let diffs = self.diffs(&mapping);
        if diffs.is_empty() {
            return Ok(Change::Unchanged);
        }
        aws.lambda
            .update_event_source_mapping()
            .uuid(mapping.uuid().unwrap_or_default())
            .batch_size(self.batch_size)
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .enabled(true)
            .send()
            .await
            .map_err(|e| sdk_error(format!("updating the event source of {}", self.function), e))?;
        Ok(Change::Updated(diffs))
    }

    async fn destroy_mapping(&self, aws: &Aws) -> Result<Change> {
        let mut deleted = false;
        for mapping in self.observe_all(aws).await? {
            deleted |= self.delete(aws, mapping.uuid().unwrap_or_default()).await?;
        }
        Ok(if deleted { Change::Deleted } else { Change::Absent })
    }
}

impl Resource for EventSourceSpec {
    fn kind(&self) -> &'static str {
        "event source"
    }
    fn name(&self) -> String {
        format!("queue -> {}", self.function)
    }
    fn key(&self) -> String {
        self.key.clone()
    }
    fn depends_on(&self) -> Vec<String> {
        self.depends_on.clone()
    }
    fn inspect<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<State>> {
        self.inspect_mapping(aws).boxed()
    }
    fn ensure<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.ensure_mapping(aws).boxed()
    }
    fn destroy<'a>(&'a self, aws: &'a Aws) -> BoxFuture<'a, Result<Change>> {
        self.destroy_mapping(aws).boxed()
    }
}
