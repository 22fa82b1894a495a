//! The ACM certificate `up` requests for `domain:` (DNS validation) with its validation records in
//! the stack's hosted zone, found again by its tags. A certificate the user gives by ARN is only
//! checked (by the domain name, `domain_name::check_given`), never changed or deleted.
//!
//! The validation record outlives the certificate: ACM gives every certificate for a name in the
//! account (other regions' and other stacks' included) the same CNAME, and managed renewal needs
//! it, so `down` leaves it in the zone. A certificate that can no longer be issued (validation
//! failed or timed out, expired, revoked) is replaced by `up` and deleted by `up` and `down`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, RecordType, ValidationMethod};
use aws_sdk_route53::types::{ChangeAction, RrType};

use super::dns_record::{self, is_validation_record, validation_record};
use super::errors::found;
use super::tagging::{self, TagsAt};
use super::{Created, Ctx, Diff, Id, Lifecycle, Tags};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Value};
use crate::retry::{self, Look, Patience};
use crate::stack::{TAG_STACK, TAG_STAGE};

impl Key {
    /// The ACM certificate `up` requested for `domain:`; it hands on its ARN.
    pub fn certificate() -> Key {
        Key::one("certificate")
    }
}

/// How long ACM may take to know a new certificate and show its validation records (seconds on
/// AWS; terraform-provider-aws allows five minutes), looked at every second.
const RECORDS: Patience = Patience {
    first_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(1),
    deadline: Duration::from_secs(300),
};
/// How long `up` waits for ISSUED once the records are written, unless
/// `WSSTACK_CERTIFICATE_WAIT_SECONDS` says otherwise: DNS validation takes minutes.
const ISSUED_WITHIN: Duration = Duration::from_secs(600);
/// How long `down` retries a certificate API Gateway still counts as in use after its domain went,
/// unless `WSSTACK_CERTIFICATE_RELEASE_SECONDS` says otherwise: it can take more than 15 minutes
/// (terraform-provider-aws waits 20).
const RELEASED_WITHIN: Duration = Duration::from_secs(1200);

fn seconds_from_env(variable: &str, default: Duration) -> Duration {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(default)
}

fn issued_within() -> Duration {
    seconds_from_env("WSSTACK_CERTIFICATE_WAIT_SECONDS", ISSUED_WITHIN)
}

fn released_within() -> Duration {
    seconds_from_env("WSSTACK_CERTIFICATE_RELEASE_SECONDS", RELEASED_WITHIN)
}

/// A certificate that can still become (or is) ISSUED; any other is dead and only ever deleted.
fn is_live(status: Option<&CertificateStatus>) -> bool {
    matches!(
        status,
        Some(CertificateStatus::Issued | CertificateStatus::PendingValidation)
    )
}

/// What the account holds for this stack's domain: the certificate to use, and dead ones.
#[derive(Debug, Default)]
struct Found {
    /// An issued certificate first, else a pending one, with the tags read to find it.
    live: Option<(String, Tags)>,
    dead: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CertificateSpec {
    pub domain: String,
    pub zone: String,
    pub stack: String,
    pub stage: String,
    pub tags: Tags,
}

/// One DNS validation record ACM asks for, and whether the zone has it.
#[derive(Debug, Clone)]
pub struct Validation {
    name: String,
    value: String,
    in_zone: bool,
}

pub struct Observed {
    arn: String,
    status: String,
    validations: Vec<Validation>,
    tags: Tags,
    /// Our other certificates for the domain, which can never be used.
    dead: Vec<String>,
}

pub(super) async fn describe(aws: &Aws, arn: &str) -> Result<Option<CertificateDetail>> {
    let call = aws.acm.describe_certificate().certificate_arn(arn);
    let output = found(call.send().await, || format!("reading ACM certificate {arn}"))?;
    Ok(output.and_then(|o| o.certificate))
}

pub(super) fn status(detail: &CertificateDetail) -> &str {
    detail.status().map(|s| s.as_str()).unwrap_or("(unknown)")
}

/// A new token for each request (32 hex digits, within ACM's `\w+`, at most 32). ACM answers a
/// token it saw in the last hour with that request's certificate, even once deleted: a token
/// derived from the stack would hand `up` right after `down` the certificate `down` deleted. A run
/// that crashed after asking finds its certificate again by its tags, not by the token.
fn idempotency_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl CertificateSpec {
    /// Our certificates for the domain (tagged with our stack and stage), whatever their status.
    /// One deleted between the listing and the reading of its tags is skipped.
    async fn find(&self, aws: &Aws) -> Result<Found> {
        let mut live = Vec::new();
        let mut dead = Vec::new();
        // No status filter: every status, so that dead certificates are found and deleted.
        let mut pages = aws.acm.list_certificates().into_paginator().send();
        while let Some(output) = pages.next().await {
            let output = output.map_err(|e| sdk_error("listing ACM certificates", e))?;
            for summary in output.certificate_summary_list() {
                let (Some(arn), Some(name)) = (summary.certificate_arn(), summary.domain_name()) else {
                    continue;
                };
                if !name.eq_ignore_ascii_case(&self.domain) {
                    continue;
                }
                let Some(tags) = self.tags_of(aws, arn).await? else {
                    continue;
                };
                if tags.get(TAG_STACK) != Some(&self.stack) || tags.get(TAG_STAGE) != Some(&self.stage) {
                    continue;
                }
                if is_live(summary.status()) {
                    let issued = summary.status() == Some(&CertificateStatus::Issued);
                    live.push((!issued, arn.to_string(), tags));
                } else {
                    dead.push(arn.to_string());
                }
            }
        }
        live.sort_by(|(a_pending, a, _), (b_pending, b, _)| (a_pending, a).cmp(&(b_pending, b)));
        let mut live = live.into_iter().map(|(_, arn, tags)| (arn, tags));
        let first = live.next();
        // A second live one (a crash between two requests): kept out of use, so it goes as well.
        dead.extend(live.map(|(arn, _)| arn));
        Ok(Found { live: first, dead })
    }

    /// Deletes certificates that will never be used, as far as ACM lets it now: one still in use
    /// (an expired certificate on a domain name) stays for a later run.
    async fn delete_dead(&self, aws: &Aws, dead: &[String]) -> Result<()> {
        for arn in dead {
            match aws.acm.delete_certificate().certificate_arn(arn).send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(sdk_error(format!("deleting dead ACM certificate {arn}"), e)),
            }
        }
        Ok(())
    }

    /// A certificate's tags; `None` when it is gone.
    async fn tags_of(&self, aws: &Aws, arn: &str) -> Result<Option<Tags>> {
        let call = aws.acm.list_tags_for_certificate().certificate_arn(arn);
        let output = found(call.send().await, || {
            format!("reading the tags of ACM certificate {arn}")
        })?;
        Ok(output.map(|output| {
            (output.tags().iter())
                .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
                .collect()
        }))
    }

    /// The validation records of a certificate, each checked against the zone.
    async fn validations(&self, aws: &Aws, detail: &CertificateDetail) -> Result<Vec<Validation>> {
        let mut validations = Vec::new();
        for option in detail.domain_validation_options() {
            let Some(record) = option.resource_record() else {
                continue;
            };
            if record.r#type() != &RecordType::Cname {
                continue;
            }
            let existing = dns_record::find(aws, &self.zone, record.name(), RrType::Cname).await?;
            validations.push(Validation {
                name: record.name().to_string(),
                value: record.value().to_string(),
                in_zone: existing.is_some_and(|set| is_validation_record(&set, record.value())),
            });
        }
        Ok(validations)
    }

    /// ACM knows a new certificate, and adds its records, a few seconds after the request: until
    /// then DescribeCertificate may answer ResourceNotFoundException, which here means "not yet".
    async fn wait_for_records(&self, aws: &Aws, arn: &str) -> Result<Vec<Validation>> {
        let look = || async {
            let ready = describe(aws, arn).await?.filter(|detail| {
                let options = detail.domain_validation_options();
                !options.is_empty() && options.iter().all(|o| o.resource_record().is_some())
            });
            Ok(match ready {
                Some(detail) => Look::Done(self.validations(aws, &detail).await?),
                None => Look::NotYet(()),
            })
        };
        retry::until(RECORDS, look, |(), waited| {
            anyhow!(
                "ACM certificate {arn} for {} shows no DNS validation record after {} s: run again",
                self.domain,
                waited.as_secs()
            )
        })
        .await
    }

    async fn write_records(&self, aws: &Aws, validations: &[Validation]) -> Result<()> {
        for v in validations.iter().filter(|v| !v.in_zone) {
            let set = validation_record(&v.name, &v.value)?;
            // ACM keeps looking for the record for 72 hours: no need to wait for INSYNC here.
            dns_record::change(aws, &self.zone, ChangeAction::Upsert, set).await?;
        }
        Ok(())
    }

    async fn wait_until_issued(&self, aws: &Aws, arn: &str, validations: &[Validation]) -> Result<()> {
        let look = || async {
            let detail = describe(aws, arn)
                .await?
                .ok_or_else(|| anyhow!("ACM certificate {arn} vanished"))?;
            match detail.status() {
                Some(CertificateStatus::Issued) => Ok(Look::Done(())),
                Some(CertificateStatus::PendingValidation) => Ok(Look::NotYet(())),
                _ => bail!(
                    "ACM certificate {arn} for {} is {} ({}): `wsstack down` removes it, then `wsstack up` requests a new one",
                    self.domain,
                    status(&detail),
                    detail.failure_reason().map(|r| r.as_str()).unwrap_or("no reason given")
                ),
            }
        };
        let patience = Patience {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            deadline: issued_within(),
        };
        retry::until(patience, look, |(), waited| {
            let records: Vec<&str> = validations.iter().map(|v| v.name.as_str()).collect();
            anyhow!(
                "ACM certificate {arn} for {} is still PENDING_VALIDATION after {} s. ACM looks up {} in public DNS: check that hosted zone {} is the zone the internet resolves {} in (the parent domain or registrar delegates to its NS records), and that no CAA record on the name or a parent forbids amazon.com to issue. `wsstack up` again keeps waiting; the certificate and its records stay",
                self.domain,
                waited.as_secs(),
                records.join(", "),
                self.zone,
                self.domain
            )
        })
        .await
    }
}

impl Lifecycle for CertificateSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("ACM certificate", Key::certificate(), &self.domain).tagged(&self.tags)
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let found = self.find(ctx.aws).await?;
        let Some((arn, tags)) = found.live else {
            return Ok(None);
        };
        let Some(detail) = describe(ctx.aws, &arn).await? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            status: status(&detail).to_string(),
            validations: self.validations(ctx.aws, &detail).await?,
            tags,
            arn,
            dead: found.dead,
        }))
    }
    fn tags_in_aws<'o>(&self, o: &'o Observed) -> Option<(&'o Tags, TagsAt)> {
        Some((&o.tags, TagsAt::Acm(o.arn.clone())))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if o.status != CertificateStatus::Issued.as_str() {
            diffs.push(Diff::new("status", &o.status, "ISSUED"));
        }
        for arn in &o.dead {
            diffs.push(Diff::new("dead certificate", arn, "(deleted)"));
        }
        for v in o.validations.iter().filter(|v| !v.in_zone) {
            diffs.push(Diff::new("validation record", "(missing)", &v.name));
        }
        diffs
    }

    fn output(&self, observed: &Observed) -> Option<Value> {
        Some(Value::Arn(observed.arn.clone()))
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let tags = tagging::acm(&self.tags)?;
        let output = ctx
            .aws
            .acm
            .request_certificate()
            .domain_name(&self.domain)
            .validation_method(ValidationMethod::Dns)
            .idempotency_token(idempotency_token())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(format!("requesting an ACM certificate for {}", self.domain), e))?;
        let arn = output
            .certificate_arn
            .ok_or_else(|| anyhow!("ACM answered RequestCertificate for {} without an ARN", self.domain))?;
        let validations = self.wait_for_records(ctx.aws, &arn).await?;
        self.write_records(ctx.aws, &validations).await?;
        self.wait_until_issued(ctx.aws, &arn, &validations).await?;
        // The certificates this one replaces (validation failed or timed out, expired...).
        self.delete_dead(ctx.aws, &self.find(ctx.aws).await?.dead).await?;
        Ok(Created::New(Some(Value::Arn(arn))))
    }

    async fn update(&self, ctx: Ctx<'_>, o: &Observed) -> Result<()> {
        self.write_records(ctx.aws, &o.validations).await?;
        if o.status != CertificateStatus::Issued.as_str() {
            self.wait_until_issued(ctx.aws, &o.arn, &o.validations).await?;
        }
        self.delete_dead(ctx.aws, &o.dead).await
    }

    /// The certificate, which API Gateway releases some time after its domain is deleted, and any
    /// dead ones. The validation record stays: every certificate for the name shares it.
    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        self.delete_dead(ctx.aws, &o.dead).await?;
        let (started, within) = (Instant::now(), released_within());
        loop {
            let call = ctx.aws.acm.delete_certificate().certificate_arn(&o.arn);
            match call.send().await {
                Ok(_) => return Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(false)
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
                    if started.elapsed() >= within {
                        bail!(
                            "ACM certificate {} for {} is still in use {} s after its API Gateway domain name was deleted (API Gateway releases it in its own time, sometimes after more than 15 minutes). Everything else is gone: `wsstack down` again later deletes the certificate",
                            o.arn,
                            self.domain,
                            within.as_secs()
                        );
                    }
                    tokio::time::sleep(Duration::from_secs(5).min(within)).await;
                }
                Err(e) => return Err(sdk_error(format!("deleting ACM certificate {}", o.arn), e)),
            }
        }
    }

    /// No certificate to use, but maybe dead ones: `down` deletes them too.
    async fn settle_absent(&self, ctx: Ctx<'_>) -> Result<()> {
        let found = self.find(ctx.aws).await?;
        self.delete_dead(ctx.aws, &found.dead).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_is_new_and_acm_shaped() {
        let token = idempotency_token();
        assert_ne!(token, idempotency_token());
        assert!(
            token.len() <= 32 && token.chars().all(|c| c.is_ascii_alphanumeric()),
            "{token}"
        );
    }
}
