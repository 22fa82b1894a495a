//! Route 53 records of the custom domain: the alias `A` and `AAAA` records from the name to the API
//! Gateway domain's regional endpoint, and the helpers the certificate writes its validation
//! records with. Records carry no tags: ours by identity (our name in the zone the stack names).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use aws_sdk_route53::types::{
    AliasTarget, Change as RecordChange, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet,
    RrType,
};

use super::{Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Target};
use crate::retry::{self, Look, Patience};

impl Key {
    /// An alias record (`A` or `AAAA`) of the custom domain.
    pub fn dns_record(kind: &str) -> Key {
        Key::each("dns-record", kind)
    }
}

/// The TTL of the validation records: ACM's own suggestion for them.
const VALIDATION_TTL: i64 = 300;
/// How long and how often `up` looks for the alias records to reach every Route 53 name server.
const IN_SYNC: Patience = Patience {
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(10),
    deadline: Duration::from_secs(300),
};

/// A DNS name as Route 53 hands it back (trailing dot, lowercase) and as we write it compare equal.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The record set of `name` and `kind` in `zone`, if there is one.
pub async fn find(aws: &Aws, zone: &str, name: &str, kind: RrType) -> Result<Option<ResourceRecordSet>> {
    let output = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(kind.clone())
        .max_items(1)
        .send()
        .await
        .map_err(|e| sdk_error(format!("reading {kind} record {name} in hosted zone {zone}"), e))?;
    Ok(output
        .resource_record_sets
        .into_iter()
        .find(|set| same_name(&set.name, name) && set.r#type == kind))
}

/// Write one change to `zone`; returns Route 53's id for it. Route 53 applies it at once for its
/// API; its reaching every name server (INSYNC) is [`wait_in_sync`]'s.
pub async fn change(aws: &Aws, zone: &str, action: ChangeAction, set: ResourceRecordSet) -> Result<String> {
    let doing = format!(
        "{} {} record {} in hosted zone {zone}",
        action.as_str(),
        set.r#type.as_str(),
        set.name
    );
    let change = RecordChange::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| anyhow!("{doing}: {e}"))?;
    let batch = ChangeBatch::builder()
        .changes(change)
        .build()
        .map_err(|e| anyhow!("{doing}: {e}"))?;
    let output = aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| sdk_error(doing, e))?;
    Ok(output.change_info.map(|info| info.id).unwrap_or_default())
}

/// Route 53 puts a change on every name server of the zone within about a minute (INSYNC). A
/// client that resolves the name before then may be told it does not exist, and resolvers cache
/// that answer: `up` hands out `wss://{domain}` only once the alias records are everywhere.
pub async fn wait_in_sync(aws: &Aws, id: &str, what: &str) -> Result<()> {
    if id.is_empty() {
        return Ok(());
    }
    let look = || async {
        let call = aws.route53.get_change().id(id);
        let output = (call.send().await).map_err(|e| sdk_error(format!("reading Route 53 change {id} ({what})"), e))?;
        let in_sync = output.change_info().map(|info| info.status()) == Some(&ChangeStatus::Insync);
        Ok(if in_sync { Look::Done(()) } else { Look::NotYet(()) })
    };
    retry::until(IN_SYNC, look, |(), waited| {
        anyhow!(
            "{what}: Route 53 change {id} is still PENDING after {} s (it usually reaches every name server within a minute); `wsstack up` again waits for it",
            waited.as_secs()
        )
    })
    .await
}

/// The CNAME record ACM validates a name with.
pub fn validation_record(name: &str, value: &str) -> Result<ResourceRecordSet> {
    let record = ResourceRecord::builder().value(value).build()?;
    Ok(ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(VALIDATION_TTL)
        .resource_records(record)
        .build()?)
}

/// Whether a record set is exactly the CNAME `name` -> `value`.
pub fn is_validation_record(set: &ResourceRecordSet, value: &str) -> bool {
    set.resource_records().len() == 1 && same_name(set.resource_records()[0].value(), value)
}

#[derive(Debug, Clone)]
pub struct DnsRecordSpec {
    /// The custom domain: the record's name.
    pub domain: String,
    pub zone: String,
    /// `A` or `AAAA`.
    pub kind: &'static str,
    /// The endpoint the record must point at, when known from discovery (a record taken away);
    /// otherwise the domain name's value in this run.
    pub expected: Option<Target>,
    /// `domain.take_over_records`: replace a record that is not an alias to an API Gateway
    /// domain of this region (someone's address or alias), which is otherwise refused.
    pub take_over: bool,
}

impl DnsRecordSpec {
    fn rr_type(&self) -> RrType {
        RrType::from(self.kind)
    }

    fn target<'a>(&'a self, ctx: Ctx<'a>) -> Option<&'a Target> {
        self.expected
            .as_ref()
            .or_else(|| ctx.resolved.domain_target().filter(|t| t.name == self.domain))
    }

    fn alias(&self, target: &Target) -> Result<ResourceRecordSet> {
        let alias = AliasTarget::builder()
            .dns_name(&target.regional_name)
            .hosted_zone_id(&target.regional_zone)
            .evaluate_target_health(false)
            .build()?;
        Ok(ResourceRecordSet::builder()
            .name(&self.domain)
            .r#type(self.rr_type())
            .alias_target(alias)
            .build()?)
    }

    async fn upsert(&self, ctx: Ctx<'_>) -> Result<()> {
        let target = self.target(ctx).ok_or_else(|| {
            anyhow!(
                "the API domain name {} has no regional endpoint to point {} {} at yet: run again",
                self.domain,
                self.kind,
                self.domain
            )
        })?;
        let id = change(ctx.aws, &self.zone, ChangeAction::Upsert, self.alias(target)?).await?;
        let what = format!("{} record {}", self.kind, self.domain);
        wait_in_sync(ctx.aws, &id, &what).await
    }
}

/// Where an existing record points: "alias DNS (zone)" or its values.
fn describe(set: &ResourceRecordSet) -> String {
    match set.alias_target() {
        Some(alias) => format!(
            "alias {} ({})",
            alias.dns_name().trim_end_matches('.'),
            alias.hosted_zone_id()
        ),
        None => {
            let values: Vec<&str> = set.resource_records().iter().map(|r| r.value()).collect();
            values.join(", ")
        }
    }
}

/// Whether `set` is the alias to `target`.
fn points_at(set: &ResourceRecordSet, target: &Target) -> bool {
    set.alias_target().is_some_and(|a| {
        same_name(a.dns_name(), &target.regional_name)
            && a.hosted_zone_id() == target.regional_zone
            && !a.evaluate_target_health()
    })
}

/// An alias to some API Gateway regional endpoint of this region: what our record looked like,
/// when the domain it pointed at is already gone and its exact endpoint unknown.
fn points_at_a_regional_api(set: &ResourceRecordSet, aws: &Aws) -> bool {
    let suffix = format!(
        ".execute-api.{}.{}",
        aws.region,
        aws.arns.dns_suffix().unwrap_or("amazonaws.com")
    );
    set.alias_target().is_some_and(|a| {
        let name = a.dns_name().trim_end_matches('.').to_ascii_lowercase();
        name.starts_with("d-") && name.ends_with(&suffix)
    })
}

impl Lifecycle for DnsRecordSpec {
    type Observed = ResourceRecordSet;

    fn id(&self) -> Id<'_> {
        Id::new(
            "DNS record",
            Key::dns_record(self.kind),
            format!("{} {}", self.domain, self.kind),
        )
    }
    fn depends_on(&self) -> Vec<Key> {
        vec![Key::domain_name()]
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<ResourceRecordSet>> {
        find(ctx.aws, &self.zone, &self.domain, self.rr_type()).await
    }

    fn diffs(&self, ctx: Ctx<'_>, set: &ResourceRecordSet) -> Vec<Diff> {
        match self.target(ctx) {
            Some(target) if points_at(set, target) => Vec::new(),
            Some(target) => vec![Diff::new(
                "target",
                describe(set),
                format!("alias {} ({})", target.regional_name, target.regional_zone),
            )],
            None => vec![Diff::new("target", describe(set), "(new domain name)")],
        }
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        self.upsert(ctx).await?;
        Ok(Created::New(None))
    }

    /// UPSERT replaces whatever is there, and `down` would then delete it: a record that was not
    /// made for an API Gateway domain (ours, before its endpoint changed) is left alone unless
    /// the stack file says to take it over.
    async fn update(&self, ctx: Ctx<'_>, set: &ResourceRecordSet) -> Result<()> {
        if !self.take_over && !points_at_a_regional_api(set, ctx.aws) {
            bail!(
                "{} record {} in hosted zone {} points at {}, which is not this stack's: `up` would replace it and `down` delete it. Remove or rename it, or set `domain.take_over_records: true` in the stack file to replace it",
                self.kind,
                self.domain,
                self.zone,
                describe(set)
            );
        }
        self.upsert(ctx).await
    }

    /// Route 53 deletes only the exact record set, which is the one just read. A record that points
    /// somewhere else now is someone's: it stays.
    async fn delete(&self, ctx: Ctx<'_>, set: ResourceRecordSet) -> Result<bool> {
        let ours = match self.target(ctx) {
            Some(target) => points_at(&set, target),
            None => points_at_a_regional_api(&set, ctx.aws),
        };
        if !ours {
            return Ok(false);
        }
        change(ctx.aws, &self.zone, ChangeAction::Delete, set).await?;
        Ok(true)
    }
}
