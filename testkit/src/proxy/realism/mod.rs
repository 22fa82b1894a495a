//! Realism mode: the proxy remembers what went through it and answers the way AWS does where the
//! emulator is kinder (IAM propagation, Lambda states, asynchronous mapping deletes, late stage
//! deployments, ...), with AWS's codes and messages. It only reshapes answers; the emulator's
//! state stays the emulator's, and nothing here fixes a request.

mod acm;
mod api_writes;
mod authorizers;
mod domain;
mod iam;
mod lambda;
mod mapping;
mod queue;
mod route53;
mod secrets;
mod stage;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One AWS behaviour the emulator hides, each on its own switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    /// After CreateRole / PutRolePolicy, Lambda refuses the role for a while: CreateFunction and
    /// UpdateFunctionConfiguration with it ("cannot be assumed by Lambda"), CreateEventSourceMapping
    /// for a function that uses it ("does not have permissions to call ReceiveMessage on SQS").
    RolePropagation,
    /// A new function is `Pending`, an updated one `LastUpdateStatus: InProgress`, in GetFunction
    /// and GetFunctionConfiguration; a code or configuration update meanwhile answers 409
    /// ResourceConflictException.
    FunctionStates,
    /// A deleted event source mapping stays listed as `Deleting`; creating one for the same
    /// function and queue answers 409 naming the old UUID.
    MappingDeletion,
    /// DeleteRole answers 409 DeleteConflict for a while after the role's last DeleteRolePolicy.
    RoleDeleteConflict,
    /// GetFunction answers `TagsError` and no `Tags`, as for a caller without `lambda:ListTags`
    /// (no duration: always, while on). ListTags keeps working.
    TagsHidden,
    /// An AutoDeploy stage shows no deployment (no DeploymentId, no LastDeploymentStatusMessage)
    /// for a while after CreateStage / UpdateStage, then a successful one.
    LateDeployment,
    /// CreateQueue (or SetQueueAttributes) with a RedrivePolicy naming a queue created moments
    /// ago answers 400 InvalidParameterValue "Dead letter target does not exist."
    DeadLetterTargetLag,
    /// API Gateway domain names carry the regional endpoint AWS assigns (`apiGatewayDomainName`,
    /// `hostedZoneId`, `domainNameStatus`), which the emulator leaves out (no duration: always).
    DomainEndpoint,
    /// DescribeCertificate shows no DNS validation `ResourceRecord` for a while after
    /// RequestCertificate.
    LateValidationRecord,
    /// DeleteCertificate answers 400 ResourceInUseException while an API domain name uses the
    /// certificate, and for a while after that domain name is deleted.
    CertificateInUse,
    /// UpdateDomainName and UpdateApiMapping (the emulator answers 500) and TagResource /
    /// UntagResource on a domain name's ARN (404) are answered as API Gateway does, and later
    /// reads of the domain name and its mappings show what they changed (no duration: always).
    DomainUpdates,
    /// A write under `/v2/apis/{id}/` while another write to that API is in flight, or within the
    /// duration after one finished, answers 409 ConflictException "Unable to complete operation
    /// due to concurrent modification. Please try again later." (API Gateway serialises them).
    ConcurrentApiWrites,
    /// DescribeCertificate and ListTagsForCertificate answer 400 ResourceNotFoundException for a
    /// while after RequestCertificate made the certificate.
    NewCertificateUnknown,
    /// RequestCertificate with an idempotency token used in the last hour answers that request's
    /// certificate ARN, even once the certificate is deleted (no duration: always).
    CertificateTokens,
    /// DeleteAuthorizer answers 409 ConflictException "Cannot delete authorizer '...', is
    /// referenced in route: ..." while a route of the API refers to it, and for a while after the
    /// last one let go.
    AuthorizerReferenced,
    /// CreateSecret of a name deleted without a recovery window moments ago answers 400
    /// InvalidRequestException "... already scheduled for deletion" for a while.
    SecretPurgeLag,
    /// A Route 53 change is `PENDING` in ChangeResourceRecordSets' answer and in GetChange for a
    /// while, then `INSYNC`.
    DnsPropagation,
}

impl Behaviour {
    pub const ALL: [Behaviour; 17] = [
        Behaviour::RolePropagation,
        Behaviour::FunctionStates,
        Behaviour::MappingDeletion,
        Behaviour::RoleDeleteConflict,
        Behaviour::TagsHidden,
        Behaviour::LateDeployment,
        Behaviour::DeadLetterTargetLag,
        Behaviour::DomainEndpoint,
        Behaviour::LateValidationRecord,
        Behaviour::CertificateInUse,
        Behaviour::DomainUpdates,
        Behaviour::ConcurrentApiWrites,
        Behaviour::NewCertificateUnknown,
        Behaviour::CertificateTokens,
        Behaviour::AuthorizerReferenced,
        Behaviour::SecretPurgeLag,
        Behaviour::DnsPropagation,
    ];

    /// Short windows, so that tests go through the behaviour and out of it in seconds. A window
    /// also lasts until the behaviour has shown once (see [`Window`]), however long that takes.
    pub fn default_duration(self) -> Duration {
        match self {
            Behaviour::RolePropagation => Duration::from_secs(2),
            Behaviour::FunctionStates => Duration::from_millis(1500),
            Behaviour::MappingDeletion => Duration::from_secs(3),
            Behaviour::RoleDeleteConflict => Duration::from_secs(2),
            Behaviour::TagsHidden => Duration::ZERO,
            Behaviour::LateDeployment => Duration::from_secs(2),
            Behaviour::DeadLetterTargetLag => Duration::from_secs(1),
            Behaviour::DomainEndpoint => Duration::ZERO,
            Behaviour::LateValidationRecord => Duration::from_secs(2),
            Behaviour::CertificateInUse => Duration::from_secs(3),
            Behaviour::DomainUpdates => Duration::ZERO,
            Behaviour::ConcurrentApiWrites => Duration::from_millis(200),
            Behaviour::NewCertificateUnknown => Duration::from_secs(2),
            Behaviour::CertificateTokens => Duration::ZERO,
            Behaviour::AuthorizerReferenced => Duration::from_secs(2),
            Behaviour::SecretPurgeLag => Duration::from_secs(2),
            Behaviour::DnsPropagation => Duration::from_secs(2),
        }
    }
}

/// Which behaviours are on, each with how long it lasts after the write that starts it.
#[derive(Debug, Clone, Default)]
pub struct Realism {
    on: BTreeMap<Behaviour, Duration>,
}

impl Realism {
    /// Every behaviour off: the proxy forwards as before.
    pub fn off() -> Realism {
        Realism::default()
    }

    /// Every behaviour on, with its default duration.
    pub fn all() -> Realism {
        Behaviour::ALL.into_iter().fold(Realism::off(), |r, b| r.with(b))
    }

    /// Only this behaviour, with its default duration.
    pub fn only(behaviour: Behaviour) -> Realism {
        Realism::off().with(behaviour)
    }

    pub fn with(self, behaviour: Behaviour) -> Realism {
        self.lasting(behaviour, behaviour.default_duration())
    }

    /// Turn `behaviour` on for `duration` after each write that starts it, and in any case until
    /// the first call it applies to.
    pub fn lasting(mut self, behaviour: Behaviour, duration: Duration) -> Realism {
        self.on.insert(behaviour, duration);
        self
    }

    pub fn without(mut self, behaviour: Behaviour) -> Realism {
        self.on.remove(&behaviour);
        self
    }

    pub fn duration(&self, behaviour: Behaviour) -> Option<Duration> {
        self.on.get(&behaviour).copied()
    }
}

/// One behaviour's window on one subject (a role, a function, a queue, a stage, ...): opened by
/// the write that starts it, closed once its duration has passed *and* it has shown at least once.
///
/// The first call the behaviour applies to after the write always meets it, however long the
/// caller took to get there: a test that asserts the behaviour showed never races the clock on a
/// slow or loaded machine (a window of the duration alone closed before a debug build's next
/// call came, and nothing was refused). The duration only makes the behaviour last longer, so that
/// retries and waits are exercised across several calls. A test that must know when a window
/// closes sets a long one and ends it with `Proxy::pass_time` (see `World::now`).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// On realism mode's clock (`World::now`).
    opened: Instant,
    shown: Cell<bool>,
}

impl Window {
    /// Whether the behaviour still applies at `now`, without counting this as showing it.
    fn is_open(&self, duration: Duration, now: Instant) -> bool {
        !self.shown.get() || now.saturating_duration_since(self.opened) < duration
    }

    /// Record that the behaviour was shown to a caller.
    fn show(&self) {
        self.shown.set(true);
    }
}

/// What realism mode did so far, per behaviour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealismCounts {
    /// Calls answered with an AWS error instead of the emulator's success.
    pub conflicts: BTreeMap<Behaviour, usize>,
    /// Successful answers reshaped (a state, hidden tags, a listed `Deleting` mapping, ...).
    pub rewrites: BTreeMap<Behaviour, usize>,
}

impl RealismCounts {
    pub fn total_conflicts(&self) -> usize {
        self.conflicts.values().sum()
    }

    pub fn conflicts_of(&self, behaviour: Behaviour) -> usize {
        self.conflicts.get(&behaviour).copied().unwrap_or(0)
    }

    pub fn rewrites_of(&self, behaviour: Behaviour) -> usize {
        self.rewrites.get(&behaviour).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for RealismCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} injected conflicts {:?}, rewritten answers {:?}",
            self.total_conflicts(),
            self.conflicts,
            self.rewrites
        )
    }
}

/// One request as realism mode sees it.
pub(crate) struct Exchange<'a> {
    pub service: &'a str,
    pub region: &'a str,
    pub operation: &'a str,
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

impl Exchange<'_> {
    /// Path segments, percent-decoded.
    fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect()
    }

    fn json_body(&self) -> Value {
        serde_json::from_slice(self.body).unwrap_or(Value::Null)
    }

    /// A parameter of an awsQuery form body.
    fn form(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// How realism mode answers a request instead of forwarding it.
#[derive(Clone)]
pub(crate) enum Verdict {
    /// An AWS error in the request's protocol.
    Error {
        behaviour: Behaviour,
        status: u16,
        code: &'static str,
        message: String,
    },
    /// A successful JSON answer the emulator can no longer give (a mapping it already deleted).
    Answer { behaviour: Behaviour, body: Value },
}

/// Realism mode's memory of what went through the proxy.
#[derive(Default)]
pub(crate) struct World {
    config: Realism,
    counts: RealismCounts,
    /// Role name -> since the last CreateRole / PutRolePolicy.
    roles_written: HashMap<String, Window>,
    /// Role name -> since the last DeleteRolePolicy.
    policies_deleted: HashMap<String, Window>,
    functions: HashMap<String, lambda::Function>,
    mappings: mapping::Mappings,
    stages: stage::Stages,
    /// Queue name -> since it was created.
    queues_created: HashMap<String, Window>,
    domains: domain::Domains,
    certificates: acm::Certificates,
    authorizers: authorizers::Authorizers,
    secrets: secrets::Secrets,
    changes: route53::Changes,
    apis: api_writes::Apis,
    /// How far realism mode's clock is ahead of the real one (`pass_time`).
    skipped: Duration,
}

impl World {
    pub fn configure(&mut self, config: Realism) {
        self.config = config;
    }

    pub fn counts(&self) -> RealismCounts {
        self.counts.clone()
    }

    /// Realism mode's clock: the real one, plus whatever `pass_time` skipped.
    fn now(&self) -> Instant {
        Instant::now() + self.skipped
    }

    /// Move realism mode's clock forward: every window behaves as if `duration` had passed.
    pub fn pass_time(&mut self, duration: Duration) {
        self.skipped += duration;
    }

    /// A window opened now, by a write that starts a behaviour.
    fn open_window(&self) -> Window {
        Window {
            opened: self.now(),
            shown: Cell::new(false),
        }
    }

    /// Whether `behaviour` is on and `window` still open; if so, the caller shows the behaviour
    /// and the window counts it.
    fn within(&self, behaviour: Behaviour, window: Option<&Window>) -> bool {
        let open = self.is_open(behaviour, window);
        if open {
            window.map(Window::show);
        }
        open
    }

    /// Whether `behaviour` is on and `window` still open, without showing it (to choose what to
    /// show, or what to forget).
    fn is_open(&self, behaviour: Behaviour, window: Option<&Window>) -> bool {
        match (self.config.duration(behaviour), window) {
            (Some(duration), Some(window)) => window.is_open(duration, self.now()),
            _ => false,
        }
    }

    fn is_on(&self, behaviour: Behaviour) -> bool {
        self.config.duration(behaviour).is_some()
    }

    /// Before forwarding: an answer to give instead, if AWS would refuse this call now.
    pub fn before(&mut self, exchange: &Exchange) -> Option<Verdict> {
        let verdict = match exchange.service {
            "iam" => iam::before(self, exchange),
            "lambda" => lambda::before(self, exchange),
            "sqs" => queue::before(self, exchange),
            "apigateway" => api_writes::before(self, exchange)
                .or_else(|| authorizers::before(self, exchange))
                .or_else(|| stage::before(self, exchange))
                .or_else(|| domain::before_apigateway(self, exchange)),
            "acm" => acm::before(self, exchange).or_else(|| domain::before_acm(self, exchange)),
            "secretsmanager" => secrets::before(self, exchange),
            _ => None,
        }?;
        match &verdict {
            Verdict::Error { behaviour, .. } => *self.counts.conflicts.entry(*behaviour).or_default() += 1,
            Verdict::Answer { behaviour, .. } => *self.counts.rewrites.entry(*behaviour).or_default() += 1,
        }
        Some(verdict)
    }

    /// Once the call has been answered, whatever the answer (`verdict` is what `before` said):
    /// the writes realism mode counted in flight are over.
    pub fn finished(&mut self, exchange: &Exchange, verdict: Option<&Verdict>) {
        let refused_as_concurrent = matches!(
            verdict,
            Some(Verdict::Error {
                behaviour: Behaviour::ConcurrentApiWrites,
                ..
            })
        );
        if exchange.service == "apigateway" && !refused_as_concurrent {
            api_writes::finished(self, exchange);
        }
    }

    /// After forwarding: remember what the call did, and reshape the answer as AWS would give it.
    /// Returns the new body when the answer changed.
    pub fn after(&mut self, exchange: &Exchange, status: u16, body: &[u8]) -> Option<Vec<u8>> {
        if !(200..300).contains(&status) {
            return None;
        }
        if exchange.service == "route53" {
            let reshaped = route53::after(self, exchange, body)?;
            *self.counts.rewrites.entry(Behaviour::DnsPropagation).or_default() += 1;
            return Some(reshaped);
        }
        let mut json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let rewritten = match exchange.service {
            "iam" => {
                iam::after(self, exchange);
                Vec::new()
            }
            "lambda" => lambda::after(self, exchange, &mut json),
            "apigateway" => {
                authorizers::after(self, exchange, &json);
                let mut rewritten = stage::after(self, exchange, &mut json);
                rewritten.extend(domain::after_apigateway(self, exchange, &mut json));
                rewritten
            }
            "acm" => {
                acm::after(self, exchange, &json);
                domain::after_acm(self, exchange, &mut json)
            }
            "sqs" => {
                queue::after(self, exchange);
                Vec::new()
            }
            "secretsmanager" => {
                secrets::after(self, exchange);
                Vec::new()
            }
            _ => Vec::new(),
        };
        if rewritten.is_empty() {
            return None;
        }
        for behaviour in rewritten {
            *self.counts.rewrites.entry(behaviour).or_default() += 1;
        }
        Some(json.to_string().into_bytes())
    }
}
