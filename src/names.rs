//! Physical names of every resource, derived from the stack name and stage (and the region where
//! the AWS namespace is global, as for IAM roles), and the ARNs built from them.
//!
//! No state file: these names, plus the `wsstack:stack` tag, are how every resource is found again.

use crate::stack::Stack;

pub const MAX_ROLE_NAME: usize = 64;
pub const MAX_FUNCTION_NAME: usize = 64;
pub const MAX_RULE_NAME: usize = 64;
pub const MAX_QUEUE_NAME: usize = 80;
pub const MAX_TABLE_NAME: usize = 255;

/// The handlers that run behind the WebSocket routes share one role; the push handler has its own,
/// and so has the authorizer (it reads the stack's secret, which no other handler may), and each
/// route with its own code (named by its handler, see `own_route_handler`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleKind {
    Routes,
    Push,
    Authorizer,
    Own(String),
}

/// The handler name of the authorizer function (`WSSTACK_HANDLER`, the function name's suffix).
pub const AUTHORIZER: &str = "authorizer";

impl RoleKind {
    pub fn suffix(&self) -> &str {
        match self {
            RoleKind::Routes => "routes",
            RoleKind::Push => "push",
            RoleKind::Authorizer => "authorizer",
            RoleKind::Own(handler) => handler,
        }
    }
}

/// The prefix of the handler name of a route with its own code: `route-sendMessage`. No bundled
/// handler starts with it, so the functions of own routes are found by name alone, even those of
/// routes the stack file no longer lists (see `discovery`).
pub const OWN_ROUTE_PREFIX: &str = "route-";
/// The handler name of an own `$default` route (`$` has no place in function names).
pub const OWN_DEFAULT_HANDLER: &str = "default-route";

/// The handler name (function, log group and role suffix) of an own route.
pub fn own_route_handler(route_key: &str) -> String {
    if route_key == crate::stack::DEFAULT_ROUTE {
        OWN_DEFAULT_HANDLER.to_string()
    } else {
        format!("{OWN_ROUTE_PREFIX}{route_key}")
    }
}

/// The route key of an own route's handler name; `None` for a bundled handler.
pub fn own_route_key(handler: &str) -> Option<String> {
    if handler == OWN_DEFAULT_HANDLER {
        return Some(crate::stack::DEFAULT_ROUTE.to_string());
    }
    handler
        .strip_prefix(OWN_ROUTE_PREFIX)
        .filter(|key| crate::stack::is_own_route_name(key))
        .map(String::from)
}

#[derive(Debug, Clone)]
pub struct Names {
    /// `{name}-{stage}`, the prefix of every physical name.
    pub prefix: String,
    pub region: String,
}

impl Names {
    pub fn new(stack: &Stack, region: &str) -> Names {
        Names {
            prefix: format!("{}-{}", stack.name, stack.stage),
            region: region.to_string(),
        }
    }

    /// IAM roles are global to the account, so the region is part of the name: the same stack in
    /// two regions must not share (and fight over) one role.
    pub fn role(&self, kind: RoleKind) -> String {
        format!("{}-{}-{}", self.prefix, self.region, kind.suffix())
    }

    pub fn table(&self) -> String {
        format!("{}-connections", self.prefix)
    }

    pub fn queue(&self) -> String {
        format!("{}-events", self.prefix)
    }

    /// The queue of fan-out chunks (see `handlers/src/chunks.rs`).
    pub fn chunk_queue(&self) -> String {
        format!("{}-chunks", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}-events-dlq", self.prefix)
    }

    pub fn rule(&self) -> String {
        format!("{}-entity-updated", self.prefix)
    }

    /// The id of the rule's one target.
    pub fn rule_target_id(&self) -> &'static str {
        "wsstack-queue"
    }

    pub fn function(&self, handler: &str) -> String {
        format!("{}-{}", self.prefix, handler)
    }

    pub fn log_group(&self, handler: &str) -> String {
        format!("/aws/lambda/{}", self.function(handler))
    }

    /// The log group of the stage's access logs (API Gateway's own naming is `/aws/apigateway/...`).
    pub fn access_log_group(&self) -> String {
        format!("/aws/apigateway/{}-access", self.prefix)
    }

    /// The Secrets Manager secret holding the stack's HS256 key.
    pub fn secret(&self) -> String {
        format!("wsstack/{}/auth-key", self.prefix)
    }

    /// The API Gateway authorizer (unique within the stack's API).
    pub fn authorizer(&self) -> String {
        format!("{}-authorizer", self.prefix)
    }
}

/// ARNs of this stack's resources in one account and region.
#[derive(Debug, Clone)]
pub struct Arns {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Arns {
    /// ARNs in `partition` (from the caller's identity, see `partition_of`): the region's name
    /// does not tell it (us-iso-*, us-isob-*, eusc-*, ... each have their own).
    pub fn new(partition: &str, region: &str, account: &str) -> Arns {
        Arns {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
        }
    }

    /// The partition of an ARN, such as sts:GetCallerIdentity's `arn:{partition}:sts::...`.
    pub fn partition_of(arn: &str) -> Option<&str> {
        let mut fields = arn.split(':');
        (fields.next() == Some("arn"))
            .then(|| fields.next())
            .flatten()
            .filter(|p| !p.is_empty())
    }

    pub fn table(&self, name: &str) -> String {
        format!(
            "arn:{}:dynamodb:{}:{}:table/{}",
            self.partition, self.region, self.account, name
        )
    }

    pub fn queue(&self, name: &str) -> String {
        format!("arn:{}:sqs:{}:{}:{}", self.partition, self.region, self.account, name)
    }

    /// Rules on the default bus have no bus in their ARN; rules on other buses do.
    pub fn rule(&self, bus: &str, name: &str) -> String {
        if bus == "default" {
            format!(
                "arn:{}:events:{}:{}:rule/{}",
                self.partition, self.region, self.account, name
            )
        } else {
            format!(
                "arn:{}:events:{}:{}:rule/{}/{}",
                self.partition, self.region, self.account, bus, name
            )
        }
    }

    /// The DNS suffix of the partition's service endpoints (execute-api URLs), as in the AWS
    /// SDK's partitions.json; `None` for a partition wsstack does not know.
    pub fn dns_suffix(&self) -> Option<&'static str> {
        dns_suffix(&self.partition)
    }

    pub fn function(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, name
        )
    }

    pub fn role(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role/{}", self.partition, self.account, name)
    }

    /// The URI an API Gateway integration invokes a function through (WebSocket APIs need this
    /// form, not the bare function ARN).
    pub fn function_invocation(&self, name: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations",
            self.partition,
            self.region,
            self.function(name)
        )
    }

    /// `arn:aws:execute-api:{region}:{account}:{api}/{rest}`
    pub fn execute_api(&self, api_id: &str, rest: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{}/{}",
            self.partition, self.region, self.account, api_id, rest
        )
    }

    /// Every ARN the secret `name` can have: Secrets Manager appends `-` and six random
    /// characters, so a policy written before the secret exists matches `{name}-??????`.
    pub fn secret_pattern(&self, name: &str) -> String {
        format!(
            "arn:{}:secretsmanager:{}:{}:secret:{}-??????",
            self.partition, self.region, self.account, name
        )
    }

    pub fn log_group(&self, name: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{}",
            self.partition, self.region, self.account, name
        )
    }
}

fn dns_suffix(partition: &str) -> Option<&'static str> {
    Some(match partition {
        "aws" | "aws-us-gov" => "amazonaws.com",
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso" => "c2s.ic.gov",
        "aws-iso-b" => "sc2s.sgov.gov",
        "aws-iso-e" => "cloud.adc-e.uk",
        "aws-iso-f" => "csp.hci.ic.gov",
        "aws-eusc" => "amazonaws.eu",
        _ => return None,
    })
}

/// The handlers (and so the Lambda functions) of a stack: one per route plus connect,
/// disconnect and push. Own routes' handlers are named by `own_route_handler`.
pub fn handlers(stack: &Stack) -> Vec<String> {
    let mut handlers = vec!["connect".to_string(), "disconnect".to_string()];
    handlers.extend(stack.routes.iter().map(|route| match route {
        crate::stack::Route::Bundled(name) => name.clone(),
        crate::stack::Route::Own(own) => own_route_handler(&own.name),
    }));
    handlers.push("push".to_string());
    handlers
}

/// Derived names that would be too long, as (field to blame, message). The region is part of the
/// role names; without it those are not checked yet.
pub fn check_lengths(stack: &Stack, region: Option<&str>) -> Vec<(String, String)> {
    let names = Names::new(stack, region.unwrap_or(""));
    let mut checks: Vec<(String, &str, usize)> = vec![
        (names.table(), "DynamoDB table name", MAX_TABLE_NAME),
        (names.queue(), "SQS queue name", MAX_QUEUE_NAME),
        (names.dead_letter_queue(), "SQS queue name", MAX_QUEUE_NAME),
        (names.rule(), "EventBridge rule name", MAX_RULE_NAME),
    ];
    for handler in handlers(stack) {
        checks.push((names.function(&handler), "Lambda function name", MAX_FUNCTION_NAME));
    }
    if stack.auth.is_some() {
        checks.push((names.function(AUTHORIZER), "Lambda function name", MAX_FUNCTION_NAME));
    }
    if region.is_some() {
        checks.push((names.role(RoleKind::Routes), "IAM role name", MAX_ROLE_NAME));
        checks.push((names.role(RoleKind::Push), "IAM role name", MAX_ROLE_NAME));
        if stack.auth.is_some() {
            checks.push((names.role(RoleKind::Authorizer), "IAM role name", MAX_ROLE_NAME));
        }
        for own in stack.own_routes() {
            let role = RoleKind::Own(own_route_handler(&own.name));
            checks.push((names.role(role), "IAM role name", MAX_ROLE_NAME));
        }
    }
    let mut problems = Vec::new();
    for (name, what, max) in checks {
        if name.len() > max {
            problems.push((
                "name".to_string(),
                format!(
                    "the derived {what} `{name}` is {} characters; AWS allows {max}. Shorten `name` or `stage`",
                    name.len()
                ),
            ));
            break; // one message is enough: every name grows with the same prefix
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(name: &str, stage: &str) -> Stack {
        crate::stack::parse(
            std::path::Path::new("t.yaml"),
            &format!("name: {name}\nstage: {stage}\n"),
        )
        .unwrap()
    }

    #[test]
    fn names_are_prefixed_and_roles_carry_the_region() {
        let names = Names::new(&stack("orders", "prod"), "eu-west-1");
        assert_eq!(names.table(), "orders-prod-connections");
        assert_eq!(names.queue(), "orders-prod-events");
        assert_eq!(names.dead_letter_queue(), "orders-prod-events-dlq");
        assert_eq!(names.role(RoleKind::Push), "orders-prod-eu-west-1-push");
        assert_eq!(names.log_group("push"), "/aws/lambda/orders-prod-push");
    }

    #[test]
    fn rule_arns_name_the_bus_unless_default() {
        let arns = Arns::new("aws", "eu-west-1", "123456789012");
        assert_eq!(
            arns.rule("default", "r"),
            "arn:aws:events:eu-west-1:123456789012:rule/r"
        );
        assert_eq!(
            arns.rule("orders", "r"),
            "arn:aws:events:eu-west-1:123456789012:rule/orders/r"
        );
        assert_eq!(
            Arns::new("aws-cn", "cn-north-1", "1").queue("q"),
            "arn:aws-cn:sqs:cn-north-1:1:q"
        );
    }

    #[test]
    fn the_partition_comes_from_the_callers_arn() {
        let cases = [
            ("arn:aws:sts::123456789012:assumed-role/deployer/me", "aws"),
            ("arn:aws-cn:iam::123456789012:user/me", "aws-cn"),
            ("arn:aws-us-gov:sts::123456789012:assumed-role/d/me", "aws-us-gov"),
            ("arn:aws-iso:sts::123456789012:assumed-role/d/me", "aws-iso"),
            ("arn:aws-iso-b:sts::123456789012:assumed-role/d/me", "aws-iso-b"),
            ("arn:aws-iso-e:sts::123456789012:assumed-role/d/me", "aws-iso-e"),
            ("arn:aws-iso-f:sts::123456789012:assumed-role/d/me", "aws-iso-f"),
            ("arn:aws-eusc:sts::123456789012:assumed-role/d/me", "aws-eusc"),
        ];
        for (arn, partition) in cases {
            assert_eq!(Arns::partition_of(arn), Some(partition), "{arn}");
        }
        assert_eq!(Arns::partition_of("not-an-arn"), None);
        assert_eq!(Arns::partition_of("arn::sts::1:user/x"), None);
    }

    #[test]
    fn every_partition_has_its_dns_suffix_and_its_arns() {
        let cases = [
            ("aws", "us-east-1", "amazonaws.com"),
            ("aws-cn", "cn-north-1", "amazonaws.com.cn"),
            ("aws-us-gov", "us-gov-west-1", "amazonaws.com"),
            ("aws-iso", "us-iso-east-1", "c2s.ic.gov"),
            ("aws-iso-b", "us-isob-east-1", "sc2s.sgov.gov"),
            ("aws-iso-e", "eu-isoe-west-1", "cloud.adc-e.uk"),
            ("aws-iso-f", "us-isof-south-1", "csp.hci.ic.gov"),
            ("aws-eusc", "eusc-de-east-1", "amazonaws.eu"),
        ];
        for (partition, region, suffix) in cases {
            let arns = Arns::new(partition, region, "123456789012");
            assert_eq!(arns.dns_suffix(), Some(suffix), "{partition}");
            assert_eq!(
                arns.function("f"),
                format!("arn:{partition}:lambda:{region}:123456789012:function:f")
            );
            assert_eq!(arns.role("r"), format!("arn:{partition}:iam::123456789012:role/r"));
        }
        assert_eq!(Arns::new("aws-future", "x-1", "1").dns_suffix(), None);
    }

    #[test]
    fn own_route_handlers_name_their_route_and_back() {
        for key in ["sendMessage", "$default", "default", "default-route", "a_b"] {
            let handler = own_route_handler(key);
            assert_eq!(own_route_key(&handler).as_deref(), Some(key), "{handler}");
        }
        for bundled in [
            "connect",
            "disconnect",
            "subscribe",
            "unsubscribe",
            "resume",
            "push",
            AUTHORIZER,
        ] {
            assert_eq!(own_route_key(bundled), None, "{bundled}");
        }
        let names = Names::new(&stack("orders", "prod"), "eu-west-1");
        assert_eq!(
            names.role(RoleKind::Own(own_route_handler("$default"))),
            "orders-prod-eu-west-1-default-route"
        );
    }

    #[test]
    fn role_name_length_depends_on_the_region() {
        // 40 + 1 + 3 = 44 prefix; "-ap-southeast-2-routes" makes 66 > 64.
        let stack = stack(&"a".repeat(40), "dev");
        assert!(check_lengths(&stack, None).is_empty());
        let problems = check_lengths(&stack, Some("ap-southeast-2"));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("IAM role name"), "{problems:?}");
    }
}
