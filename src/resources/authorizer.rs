//! The API Gateway REQUEST authorizer of the stack's WebSocket API, invoking the authorizer
//! function on `$connect`. Authorizers carry no tags: ours is the one with our name in our API.
//!
//! No identity source on purpose: API Gateway answers 401 without calling the function when a
//! configured source is missing, and the token may come by header or by query. No result TTL
//! either: WebSocket APIs do not cache authorizer results.

use anyhow::Result;
use aws_sdk_apigatewayv2::error::SdkError;
use aws_sdk_apigatewayv2::operation::delete_authorizer::DeleteAuthorizerError;
use aws_sdk_apigatewayv2::types::{Authorizer, AuthorizerType};

use super::errors::{deleted, found};
use super::transient;
use super::{Created, Ctx, Diff, Id, Lifecycle};
use crate::aws::{sdk_error, Aws};
use crate::graph::{Key, Value};
use crate::names::AUTHORIZER;
use crate::retry;

impl Key {
    /// The REQUEST authorizer on `$connect`; it hands on its id.
    pub fn authorizer() -> Key {
        Key::one("authorizer")
    }
}

#[derive(Debug, Clone)]
pub struct AuthorizerSpec {
    pub name: String,
    /// The URI that invokes the authorizer function.
    pub uri: String,
    /// The function reads the stack's secret: the authorizer goes live only once it exists.
    pub secret: bool,
}

pub struct Observed {
    api: String,
    authorizer: Authorizer,
}

/// The stack's authorizer, found through `$connect`, the one route that uses it: the route's
/// authorizer now, or `handed_on`, the one it had before this run changed the route. (GetAuthorizers
/// would find it by name, but the emulator lacks it; an authorizer left without a route by an
/// interrupted first run stays until `down` deletes the API, and it with it.) Someone else's
/// authorizer on our route is not ours: `None`.
pub async fn find(aws: &Aws, api: &str, name: &str, handed_on: Option<&str>) -> Result<Option<Authorizer>> {
    let routes = super::api_listing::routes(aws, api).await?;
    find_on(aws, api, &routes, name, handed_on).await
}

/// `find`, with the API's routes already read.
pub async fn find_on(
    aws: &Aws,
    api: &str,
    routes: &[aws_sdk_apigatewayv2::types::Route],
    name: &str,
    handed_on: Option<&str>,
) -> Result<Option<Authorizer>> {
    let on_route = routes
        .iter()
        .find(|r| r.route_key() == Some("$connect"))
        .and_then(|r| r.authorizer_id())
        .filter(|id| !id.is_empty());
    let Some(id) = on_route.or(handed_on) else {
        return Ok(None);
    };
    let call = aws.apigateway.get_authorizer().api_id(api).authorizer_id(id);
    let Some(authorizer) = found(call.send().await, || format!("reading authorizer {id} of API {api}"))? else {
        return Ok(None);
    };
    Ok((authorizer.name() == Some(name)).then(|| {
        Authorizer::builder()
            .set_authorizer_id(authorizer.authorizer_id)
            .set_authorizer_type(authorizer.authorizer_type)
            .set_authorizer_uri(authorizer.authorizer_uri)
            .set_identity_source(authorizer.identity_source)
            .set_name(authorizer.name)
            .build()
    }))
}

impl AuthorizerSpec {
    fn id(observed: &Observed) -> String {
        observed.authorizer.authorizer_id().unwrap_or_default().to_string()
    }
}

impl Lifecycle for AuthorizerSpec {
    type Observed = Observed;

    fn id(&self) -> Id<'_> {
        Id::new("API authorizer", Key::authorizer(), &self.name)
    }
    fn depends_on(&self) -> Vec<Key> {
        let mut keys = vec![Key::function(AUTHORIZER)];
        if self.secret {
            keys.push(Key::secret());
        }
        keys
    }

    async fn observe(&self, ctx: Ctx<'_>) -> Result<Option<Observed>> {
        let Some(api) = ctx.resolved.api_id() else {
            return Ok(None);
        };
        // A value `$connect` hands on, against the rule that `observe` reads only what the run
        // started with: only the retired authorizer, which comes after the route and never reads
        // ahead (`Retired` takes no look), meets it set.
        let handed_on = ctx.resolved.authorizer_id(&Key::route("connect"));
        let found = find(ctx.aws, api, &self.name, handed_on).await?;
        Ok(found.map(|authorizer| Observed {
            api: api.to_string(),
            authorizer,
        }))
    }

    fn diffs(&self, _ctx: Ctx<'_>, o: &Observed) -> Vec<Diff> {
        let a = &o.authorizer;
        let mut diffs = Vec::new();
        if a.authorizer_type() != Some(&AuthorizerType::Request) {
            let current = a.authorizer_type().map(|t| t.as_str()).unwrap_or("(none)");
            diffs.push(Diff::new("type", current, "REQUEST"));
        }
        if a.authorizer_uri() != Some(self.uri.as_str()) {
            diffs.push(Diff::new(
                "function URI",
                a.authorizer_uri().unwrap_or("(none)"),
                &self.uri,
            ));
        }
        if !a.identity_source().is_empty() {
            diffs.push(Diff::new("identity source", a.identity_source().join(", "), "(none)"));
        }
        diffs
    }

    fn output(&self, observed: &Observed) -> Option<Value> {
        Some(Value::AuthorizerId(Self::id(observed)))
    }

    async fn create(&self, ctx: Ctx<'_>) -> Result<Created> {
        let api = ctx.resolved.require_api(&format!("authorizer {}", self.name))?;
        let output = ctx
            .aws
            .apigateway
            .create_authorizer()
            .api_id(api)
            .name(&self.name)
            .authorizer_type(AuthorizerType::Request)
            .authorizer_uri(&self.uri)
            .send()
            .await
            .map_err(|e| sdk_error(format!("creating authorizer {} of API {api}", self.name), e))?;
        Ok(Created::New(output.authorizer_id.map(Value::AuthorizerId)))
    }

    /// An identity source cannot be removed by UpdateAuthorizer (an empty list is refused), so a
    /// drifted authorizer is replaced; the `$connect` route follows the new id.
    async fn update(&self, ctx: Ctx<'_>, observed: &Observed) -> Result<()> {
        let id = Self::id(observed);
        if observed.authorizer.identity_source().is_empty() {
            ctx.aws
                .apigateway
                .update_authorizer()
                .api_id(&observed.api)
                .authorizer_id(&id)
                .authorizer_type(AuthorizerType::Request)
                .authorizer_uri(&self.uri)
                .send()
                .await
                .map_err(|e| sdk_error(format!("updating authorizer {}", self.name), e))?;
            return Ok(());
        }
        anyhow::bail!(
            "authorizer {} ({id}) of API {} has an identity source ({}), which makes API Gateway refuse tokens sent the other way (header or query) without asking the function; `wsstack down` then `wsstack up` creates it again without one",
            self.name,
            observed.api,
            observed.authorizer.identity_source().join(", ")
        )
    }

    /// Right after `$connect` let go of it, API Gateway may still count the authorizer as used.
    async fn delete(&self, ctx: Ctx<'_>, o: Observed) -> Result<bool> {
        let id = Self::id(&o);
        let call = ctx.aws.apigateway.delete_authorizer().api_id(&o.api).authorizer_id(&id);
        let referenced = transient::authorizer_release_lag::<SdkError<DeleteAuthorizerError, _>>;
        let result = retry::eventually(retry::AUTHORIZER_RELEASE, referenced, || call.clone().send()).await;
        deleted(result, || {
            format!("deleting authorizer {} ({id}) of API {}", self.name, o.api)
        })
    }
}
