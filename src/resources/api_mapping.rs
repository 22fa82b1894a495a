//! The API mapping of the custom domain's root to the stack's API and stage. Mappings carry no tags:
//! ours by identity (the root mapping of our domain name). A root mapping to another API is not
//! ours: `up` refuses to move it, `down` leaves it to the domain name's deletion.

use anyhow::{bail, Result};
use aws_sdk_apigatewayv2::types::ApiMapping;

use super::errors::{deleted, found};
use super::{Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::sdk_error;
use crate::graph::Key;

impl Key {
    /// The mapping of the custom domain to the stack's API and stage.
    pub fn api_mapping() -> Key {
        Key::one("api-mapping")
    }
}

#[derive(Debug, Clone)]
pub struct ApiMappingSpec {
    pub domain: String,
    pub stage: String,
}

pub struct Observed {
    mapping: ApiMapping,
    /// The stack's API.
    api: String,
}

impl Observed {
    fn id(&self) -> &str {
        self.mapping.api_mapping_id().unwrap_or_default()
    }
    fn ours(&self) -> bool {
        self.mapping.api_id() == Some(self.api.as_str())
    }
}

impl Lifecycle for ApiMappingSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new(
            "API mapping",
            Key::api_mapping(),
            format!("{} -> {}", self.domain, self.stage),
        )
    }
    fn depends_on(&self) -> Vec<Key> {
        vec![Key::domain_name(), Key::stage()]
    }
    /// `observe` keeps the API id it compared against, which a run that creates the API (or
    /// settles a race onto another one) only knows once the API is done.
    fn reads_ahead(&self) -> bool {
        false
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let Some(api) = ctx.resolved.api_id() else {
            return Ok(None);
        };
        let mut token = None;
        loop {
            let call = ctx.aws.apigateway.get_api_mappings().domain_name(&self.domain);
            let answer = call.max_results("100").set_next_token(token).send().await;
            let Some(output) = found(answer, || format!("listing the API mappings of {}", self.domain))? else {
                return Ok(None);
            };
            let root = output
                .items
                .unwrap_or_default()
                .into_iter()
                .find(|m| m.api_mapping_key().unwrap_or_default().is_empty());
            if let Some(mapping) = root {
                return Ok(Some(Observed {
                    mapping,
                    api: api.to_string(),
                }));
            }
            match output.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(None),
            }
        }
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let mut diffs = Vec::new();
        if !o.ours() {
            diffs.push(Diff::new("API", o.mapping.api_id().unwrap_or("(none)"), &o.api));
        }
        if o.mapping.stage() != Some(self.stage.as_str()) {
            diffs.push(Diff::new("stage", o.mapping.stage().unwrap_or("(none)"), &self.stage));
        }
        diffs
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let api = ctx.resolved.require_api(&format!("API mapping of {}", self.domain))?;
        let call = ctx.aws.apigateway.create_api_mapping().domain_name(&self.domain);
        match call.api_id(api).stage(&self.stage).send().await {
            Ok(_) => Ok(Created::New(None)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => Ok(Created::AlreadyExists),
            Err(e) => Err(sdk_error(format!("mapping {} to API {api}", self.domain), e)),
        }
    }

    async fn update(&self, ctx: Ctx<'_>, o: &Observed) -> Result<()> {
        if !o.ours() {
            bail!(
                "{} is mapped to API {} (stage {}), not to this stack's API {}: remove that mapping (aws apigatewayv2 delete-api-mapping --domain-name {} --api-mapping-id {}) or give another domain",
                self.domain,
                o.mapping.api_id().unwrap_or("(none)"),
                o.mapping.stage().unwrap_or("(none)"),
                o.api,
                self.domain,
                o.id()
            );
        }
        let call = ctx.aws.apigateway.update_api_mapping().domain_name(&self.domain);
        call.api_mapping_id(o.id())
            .api_id(&o.api)
            .stage(&self.stage)
            .send()
            .await
            .map_err(|e| sdk_error(format!("updating the API mapping of {}", self.domain), e))?;
        Ok(())
    }

    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        if !o.ours() {
            return Ok(false);
        }
        let call = ctx.aws.apigateway.delete_api_mapping().domain_name(&self.domain);
        deleted(call.api_mapping_id(o.id()).send().await, || {
            format!("deleting the API mapping of {}", self.domain)
        })
    }
}
