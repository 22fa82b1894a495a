//! `domain:` against moto, through the proxy with API Gateway's and ACM's behaviours the emulator
//! lacks switched on: `up` makes the certificate (or checks a given one), its validation records,
//! the domain name, the mapping and the alias records; a second `up` writes nothing; `down` and a
//! stack file without `domain:` take all of it away, and never a certificate given by ARN.

mod common;

use std::path::{Path, PathBuf};

use aws_sdk_route53::types::RrType;
use common::*;
use testkit::{Behaviour, Realism};

const NAME: &str = "ws.example.com";

/// ACM's emulated validation takes this long (seconds) once requested: long enough for a short
/// wait to run out, short enough for a test.
const VALIDATION_SECONDS: &str = "15";

/// A moto whose certificates turn ISSUED after `VALIDATION_SECONDS`, a public zone for
/// example.com in it, and the proxy answering as API Gateway and ACM do. Returns the zone id.
async fn start() -> (Env, String) {
    // The same value for every test of this binary: each starts its own moto, which inherits it.
    std::env::set_var("MOTO_ACM_VALIDATION_WAIT", VALIDATION_SECONDS);
    let env = Env::start().await;
    env.proxy.set_realism(
        Realism::only(Behaviour::DomainEndpoint)
            // Its default window: the first DescribeCertificate meets it however late it comes,
            // and a short one leaves the stalled run time to ask before moto issues.
            .with(Behaviour::LateValidationRecord)
            .with(Behaviour::CertificateInUse)
            .with(Behaviour::DomainUpdates)
            .with(Behaviour::NewCertificateUnknown)
            .with(Behaviour::CertificateTokens)
            .with(Behaviour::DnsPropagation),
    );
    let zone = route53(&env)
        .create_hosted_zone()
        .name("example.com")
        .caller_reference(uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    let id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    (env, id)
}

fn route53(env: &Env) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&env.config)
}

fn acm(env: &Env) -> aws_sdk_acm::Client {
    aws_sdk_acm::Client::new(&env.config)
}

fn with_domain(env: &Env, name: &str, zone: &str, certificate: Option<&str>) -> PathBuf {
    let mut text = stack_text(name, &[]);
    text.push_str(&format!("\ndomain:\n  name: {NAME}\n  hosted_zone_id: {zone}\n"));
    if let Some(arn) = certificate {
        text.push_str(&format!("  certificate_arn: {arn}\n"));
    }
    env.write_stack("stack.yaml", &text)
}

/// Every record of the zone but its own NS and SOA: (name, type, alias target or values).
async fn records(env: &Env, zone: &str) -> Vec<(String, String, String)> {
    let output = route53(env)
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    output
        .resource_record_sets()
        .iter()
        .filter(|r| !matches!(r.r#type(), RrType::Ns | RrType::Soa))
        .map(|r| {
            let to = match r.alias_target() {
                Some(a) => format!("alias {} {}", a.dns_name().trim_end_matches('.'), a.hosted_zone_id()),
                None => r.resource_records().iter().map(|v| v.value().to_string()).collect(),
            };
            (
                r.name().trim_end_matches('.').to_string(),
                r.r#type().as_str().to_string(),
                to,
            )
        })
        .collect()
}

/// Asserts that the zone holds nothing but ACM validation records; returns how many.
async fn validation_records_only(env: &Env, zone: &str) -> usize {
    let left = records(env, zone).await;
    assert!(
        left.iter()
            .all(|(name, kind, _)| kind == "CNAME" && name.starts_with('_')),
        "{left:?}"
    );
    left.len()
}

async fn certificates(env: &Env) -> Vec<String> {
    let output = acm(env).list_certificates().send().await.unwrap();
    output
        .certificate_summary_list()
        .iter()
        .filter_map(|c| c.certificate_arn().map(String::from))
        .collect()
}

async fn domain_names(env: &Env) -> Vec<aws_sdk_apigatewayv2::types::DomainName> {
    let output = env.apigateway().get_domain_names().send().await.unwrap();
    output.items.unwrap_or_default()
}

/// What `up` made for the domain: the domain name uses `certificate`, the root mapping goes to
/// the stack's API and stage, and A and AAAA alias to the domain's regional endpoint.
async fn assert_served(env: &Env, stack: &str, zone: &str, certificate: &str) {
    let domains = domain_names(env).await;
    assert_eq!(domains.len(), 1, "{domains:?}");
    let configuration = &domains[0].domain_name_configurations()[0];
    assert_eq!(configuration.certificate_arn(), Some(certificate));
    assert_eq!(configuration.endpoint_type().map(|t| t.as_str()), Some("REGIONAL"));
    assert_eq!(configuration.security_policy().map(|p| p.as_str()), Some("TLS_1_2"));
    assert_eq!(configuration.ip_address_type().map(|t| t.as_str()), Some("dualstack"));
    let api = apis_of(env, stack).await[0].api_id().unwrap().to_string();
    let mappings = env
        .apigateway()
        .get_api_mappings()
        .domain_name(NAME)
        .send()
        .await
        .unwrap();
    let mappings = mappings.items.unwrap_or_default();
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    assert_eq!(
        (mappings[0].api_id(), mappings[0].stage()),
        (Some(api.as_str()), Some("dev"))
    );
    let aliases: Vec<_> = records(env, zone).await.into_iter().filter(|r| r.0 == NAME).collect();
    let kinds: Vec<&str> = aliases.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(kinds, ["A", "AAAA"], "{aliases:?}");
    for (_, _, to) in &aliases {
        // The endpoint API Gateway gave (through the proxy, as AWS does) and its regional zone.
        assert!(
            to.starts_with("alias d-") && to.ends_with(".execute-api.us-east-1.amazonaws.com Z1UJRXOUMOOFQ8"),
            "{to}"
        );
    }
}

async fn assert_url(env: &Env, stack: &Path) {
    let outputs = env.run(stack, &["outputs", "-o", "json"]).await.expect_exit(0);
    assert_eq!(outputs.json()["websocket_url"], format!("wss://{NAME}"), "{outputs}");
    let status = env.run(stack, &["status", "-o", "json"]).await;
    assert_eq!(status.code, 0, "in sync: {status}");
    assert_eq!(
        status.json()["outputs"]["websocket_url"],
        format!("wss://{NAME}"),
        "{status}"
    );
}

/// A run of the binary with extra environment.
async fn run_with(env: &Env, stack: &Path, args: &[&str], extra: (&str, &str)) -> Run {
    let mut command = env.command(stack, args);
    command.env(extra.0, extra.1);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn up_serves_the_stack_on_its_domain_and_down_takes_it_all_away() {
    let (env, zone) = start().await;
    let stack = with_domain(&env, "domain", &zone, None);
    let up = env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&up).0, STACK_RESOURCES as u64 + 5, "{up}");
    assert_eq!(up.json()["outputs"]["websocket_url"], format!("wss://{NAME}"));

    let requested = certificates(&env).await;
    assert_eq!(requested.len(), 1, "one certificate: {requested:?}");
    let detail = acm(&env)
        .describe_certificate()
        .certificate_arn(&requested[0])
        .send()
        .await
        .unwrap();
    let detail = detail.certificate().unwrap();
    assert_eq!(detail.status().map(|s| s.as_str()), Some("ISSUED"));
    let validation = detail.domain_validation_options()[0].resource_record().unwrap();
    let cname = (
        validation.name().trim_end_matches('.').to_string(),
        "CNAME".to_string(),
        validation.value().to_string(),
    );
    assert!(records(&env, &zone).await.contains(&cname), "validation record written");
    let tags = acm(&env)
        .list_tags_for_certificate()
        .certificate_arn(&requested[0])
        .send()
        .await
        .unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == "wsstack:stack" && t.value() == Some("domain")));
    assert_served(&env, "domain", &zone, &requested[0]).await;
    assert!(env.proxy.realism_counts().rewrites_of(Behaviour::LateValidationRecord) >= 1);
    // The URL was handed out once the alias records were on every name server: each alias
    // change was PENDING at first, and asked after until INSYNC.
    let asked = env
        .proxy
        .calls()
        .iter()
        .filter(|call| call.service == "route53" && call.operation.starts_with("GET /2013-04-01/change/"))
        .count();
    assert!(asked >= 4, "GetChange asked {asked} times for the two alias records");
    assert_url(&env, &stack).await;

    env.proxy.clear();
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let writes = env.proxy.writes();
    assert!(writes.is_empty(), "a no-op up writes nothing: {writes:?}");

    env.run(&stack, &["down", "--yes", "-o", "json"]).await.expect_exit(0);
    assert_eq!(leftovers(&env, "domain").await, Vec::<String>::new());
    assert!(domain_names(&env).await.is_empty());
    assert_eq!(certificates(&env).await, Vec::<String>::new());
    assert_eq!(
        records(&env, &zone).await,
        vec![cname],
        "alias records gone, the validation record (every certificate for the name shares it) kept"
    );
    assert!(
        env.proxy
            .realism_counts()
            .conflicts_of(Behaviour::NewCertificateUnknown)
            >= 1,
        "ACM did not know the new certificate at first: {}",
        env.proxy.realism_counts()
    );
    assert!(
        env.proxy.realism_counts().conflicts_of(Behaviour::CertificateInUse) >= 1,
        "the certificate was still in use right after its domain went: {}",
        env.proxy.realism_counts()
    );
}

/// A self-signed certificate for `name` (openssl), imported into ACM: ISSUED at once.
async fn import(env: &Env, name: &str) -> String {
    let dir = env.dir.path();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj"])
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let blob = |p: &Path| aws_smithy_types::Blob::new(std::fs::read(p).unwrap());
    let imported = acm(env)
        .import_certificate()
        .certificate(blob(&cert))
        .private_key(blob(&key))
        .send()
        .await
        .unwrap();
    imported.certificate_arn().unwrap().to_string()
}

#[tokio::test]
async fn a_given_certificate_is_checked_used_and_kept() {
    let (env, zone) = start().await;
    let elsewhere = import(&env, "other.example.org").await;
    let stack = with_domain(&env, "given", &zone, Some(&elsewhere));
    let refused = env.run(&stack, &["up"]).await.expect_exit(1);
    refused.expect_stderr(&format!("covers other.example.org, not {NAME}"));
    assert!(
        domain_names(&env).await.is_empty(),
        "no domain name with a wrong certificate"
    );

    let ours = import(&env, NAME).await;
    let stack = with_domain(&env, "given", &zone, Some(&ours));
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(certificates(&env).await.len(), 2, "nothing requested");
    assert_served(&env, "given", &zone, &ours).await;
    assert_url(&env, &stack).await;

    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert!(domain_names(&env).await.is_empty());
    assert_eq!(records(&env, &zone).await, Vec::new());
    let mut kept = certificates(&env).await;
    kept.sort();
    let mut given = vec![elsewhere, ours];
    given.sort();
    assert_eq!(kept, given, "down keeps the certificates it was given");
}

#[tokio::test]
async fn a_stalled_validation_says_what_to_check_and_a_rerun_picks_it_up() {
    let (env, zone) = start().await;
    let stack = with_domain(&env, "stall", &zone, None);
    let stalled = run_with(&env, &stack, &["up"], ("WSSTACK_CERTIFICATE_WAIT_SECONDS", "0")).await;
    assert_eq!(stalled.code, 1, "{stalled}");
    for hint in ["PENDING_VALIDATION", &zone, "NS records", "CAA"] {
        assert!(stalled.stderr.contains(hint), "{hint}: {stalled}");
    }
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let requested = certificates(&env).await;
    assert_eq!(
        requested.len(),
        1,
        "the re-run found the pending certificate: {requested:?}"
    );
    assert_served(&env, "stall", &zone, &requested[0]).await;
}

#[tokio::test]
async fn a_stack_file_without_domain_takes_away_what_the_domain_made() {
    let (env, zone) = start().await;
    let stack = with_domain(&env, "undomain", &zone, None);
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);

    // Someone maps the domain to another API: `up` refuses to take the mapping over.
    let gateway = env.apigateway();
    let mapping = gateway.get_api_mappings().domain_name(NAME).send().await.unwrap();
    let ours = mapping.items()[0].api_mapping_id().unwrap().to_string();
    gateway
        .delete_api_mapping()
        .domain_name(NAME)
        .api_mapping_id(ours)
        .send()
        .await
        .unwrap();
    let other = gateway
        .create_api()
        .name("someone-else")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
        .route_selection_expression("$request.body.action")
        .send()
        .await
        .unwrap();
    let other = other.api_id().unwrap();
    gateway
        .create_api_mapping()
        .domain_name(NAME)
        .api_id(other)
        .stage("live")
        .send()
        .await
        .unwrap();
    let refused = env.run(&stack, &["up"]).await.expect_exit(1);
    refused.expect_stderr(&format!(
        "{NAME} is mapped to API {other} (stage live), not to this stack's API"
    ));

    let plain = env.write_stack("plain.yaml", &stack_text("undomain", &[]));
    let status = env.run(&plain, &["status", "-o", "json"]).await;
    assert_eq!(status.code, 3, "the domain shows as unwanted: {status}");
    let again = env.run(&plain, &["up", "-o", "json"]).await.expect_exit(0);
    assert_eq!(counts(&again).2, 1, "the custom domain, as one: {again}");
    assert!(domain_names(&env).await.is_empty());
    assert_eq!(certificates(&env).await, Vec::<String>::new());
    assert_eq!(validation_records_only(&env, &zone).await, 1);
    let status = env.run(&plain, &["status", "-o", "json"]).await;
    assert_eq!(status.code, 0, "in sync: {status}");
    assert!(status.json()["outputs"]["websocket_url"]
        .as_str()
        .unwrap()
        .contains(".execute-api."));
}

/// The domain name, its mapping and their tags changed by hand: `status` names each drift, `up`
/// sets them right in place (UpdateDomainName, UpdateApiMapping, TagResource/UntagResource, no
/// delete), and then writes nothing.
#[tokio::test]
async fn drift_of_the_domain_and_its_mapping_is_set_right_in_place() {
    let (env, zone) = start().await;
    let stack = with_domain(&env, "drift", &zone, None);
    env.run(&stack, &["up"]).await.expect_exit(0);
    let certificate = certificates(&env).await[0].clone();

    // By hand through the proxy, which answers the updates the emulator cannot make.
    let through_proxy = env.config.to_builder().endpoint_url(env.proxy.endpoint()).build();
    let gateway = aws_sdk_apigatewayv2::Client::new(&through_proxy);
    let by_hand = aws_sdk_apigatewayv2::types::DomainNameConfiguration::builder()
        .certificate_arn(&certificate)
        .endpoint_type(aws_sdk_apigatewayv2::types::EndpointType::Regional)
        .security_policy(aws_sdk_apigatewayv2::types::SecurityPolicy::Tls10)
        .build();
    let call = gateway.update_domain_name().domain_name(NAME);
    call.domain_name_configurations(by_hand).send().await.unwrap();
    let mappings = gateway.get_api_mappings().domain_name(NAME).send().await.unwrap();
    let mapping = &mappings.items()[0];
    let call = gateway.update_api_mapping().domain_name(NAME);
    let call = call.api_mapping_id(mapping.api_mapping_id().unwrap());
    call.api_id(mapping.api_id().unwrap())
        .stage("elsewhere")
        .send()
        .await
        .unwrap();
    let arn = format!("arn:aws:apigateway:{REGION}::/domainnames/{NAME}");
    gateway
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("project")
        .send()
        .await
        .unwrap();

    let status = env.run(&stack, &["status"]).await;
    assert_eq!(status.code, 3, "drifted: {status}");
    for drift in ["security policy", "TLS_1_0", "elsewhere", "project"] {
        assert!(status.stdout.contains(drift), "{drift}: {status}");
    }
    env.proxy.clear();
    env.run(&stack, &["up"]).await.expect_exit(0);
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(
        writes.iter().any(|w| w.starts_with("PATCH /v2/domainnames/"))
            && !writes.iter().any(|w| w.starts_with("DELETE /v2/domainnames")),
        "set right in place: {writes:?}"
    );
    let read = gateway.get_domain_name().domain_name(NAME).send().await.unwrap();
    let configuration = &read.domain_name_configurations()[0];
    assert_eq!(configuration.security_policy().map(|p| p.as_str()), Some("TLS_1_2"));
    let mappings = gateway.get_api_mappings().domain_name(NAME).send().await.unwrap();
    assert_eq!(mappings.items()[0].stage(), Some("dev"));
    let tags = read.tags().cloned().unwrap_or_default();
    assert_eq!(
        tags.get("project").map(String::as_str),
        Some("wsstack-demo"),
        "{tags:?}"
    );
    assert!(env.proxy.realism_counts().rewrites_of(Behaviour::DomainUpdates) >= 3);

    env.proxy.clear();
    assert_eq!(env.run(&stack, &["up"]).await.code, 0);
    let writes: Vec<String> = env.proxy.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(env.run(&stack, &["down", "--yes"]).await.code, 0);
}

#[tokio::test]
async fn up_right_after_down_gets_a_certificate_of_its_own() {
    let (env, zone) = start().await;
    let stack = with_domain(&env, "again", &zone, None);
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let first = certificates(&env).await;
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(certificates(&env).await, Vec::<String>::new());

    // Within the hour ACM answers a repeated idempotency token with the deleted certificate.
    let up = env.run(&stack, &["up", "-o", "json"]).await;
    assert_eq!(up.code, 0, "{up}\n{}", env.proxy.realism_counts());
    let second = certificates(&env).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "a new certificate, not the deleted one");
    assert_served(&env, "again", &zone, &second[0]).await;
    let cnames: Vec<_> = records(&env, &zone)
        .await
        .into_iter()
        .filter(|r| r.1 == "CNAME")
        .collect();
    assert_eq!(cnames.len(), 1, "one validation record, shared by both: {cnames:?}");
}

/// A certificate that expires in `seconds`, for `name`, made with the emulator's Python (openssl
/// here cannot set an end time closer than a day), imported with this stack's tags.
async fn import_expiring(env: &Env, name: &str, stack: &str, seconds: u32) -> String {
    let python = testkit::repo_root().join(".venv/bin/python");
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sys.argv[1])])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
    .public_key(key.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=1))
    .not_valid_after(now + datetime.timedelta(seconds=int(sys.argv[2])))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName(sys.argv[1])]), critical=False)
    .sign(key, hashes.SHA256()))
sys.stdout.write(cert.public_bytes(serialization.Encoding.PEM).decode())
sys.stdout.write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode())
"#;
    let made = std::process::Command::new(python)
        .args(["-c", script, name, &seconds.to_string()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let pem = String::from_utf8(made.stdout).unwrap();
    let (cert, key) = pem.split_at(pem.find("-----BEGIN RSA PRIVATE KEY-----").unwrap());
    let tag = |k: &str, v: &str| aws_sdk_acm::types::Tag::builder().key(k).value(v).build().unwrap();
    let imported = acm(env)
        .import_certificate()
        .certificate(aws_smithy_types::Blob::new(cert.as_bytes()))
        .private_key(aws_smithy_types::Blob::new(key.as_bytes()))
        .tags(tag("wsstack:stack", stack))
        .tags(tag("wsstack:stage", "dev"))
        .send()
        .await
        .unwrap();
    imported.certificate_arn().unwrap().to_string()
}

#[tokio::test]
async fn a_dead_certificate_of_the_stack_is_replaced_and_deleted() {
    let (env, zone) = start().await;
    let expired = import_expiring(&env, NAME, "dead", 3).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let status = acm(&env)
        .describe_certificate()
        .certificate_arn(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.certificate().unwrap().status().map(|s| s.as_str()),
        Some("EXPIRED")
    );

    let stack = with_domain(&env, "dead", &zone, None);
    env.run(&stack, &["up", "-o", "json"]).await.expect_exit(0);
    let left = certificates(&env).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], expired, "the expired certificate was replaced");
    assert_served(&env, "dead", &zone, &left[0]).await;

    // Another one dies while the stack is down: `down` finds it too.
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    let expired = import_expiring(&env, NAME, "dead", 3).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert!(
        !certificates(&env).await.contains(&expired),
        "{expired} left after down"
    );
}

#[tokio::test]
async fn down_names_the_certificate_api_gateway_keeps_and_a_rerun_deletes_it() {
    let (env, zone) = start().await;
    env.proxy.set_realism(
        Realism::only(Behaviour::DomainEndpoint)
            .with(Behaviour::DomainUpdates)
            // Far past the patience below: only `pass_time` ends it.
            .lasting(Behaviour::CertificateInUse, std::time::Duration::from_secs(3600)),
    );
    let stack = with_domain(&env, "kept", &zone, None);
    env.run(&stack, &["up"]).await.expect_exit(0);
    let certificate = certificates(&env).await[0].clone();

    let down = run_with(
        &env,
        &stack,
        &["down", "--yes"],
        ("WSSTACK_CERTIFICATE_RELEASE_SECONDS", "2"),
    )
    .await;
    assert_eq!(down.code, 1, "{down}");
    for said in [certificate.as_str(), "still in use", "`wsstack down` again"] {
        assert!(down.stderr.contains(said), "{said}: {down}");
    }
    assert_eq!(
        leftovers(&env, "kept").await,
        Vec::<String>::new(),
        "everything else went"
    );
    assert!(domain_names(&env).await.is_empty());
    assert_eq!(certificates(&env).await, vec![certificate]);

    env.proxy.pass_time(std::time::Duration::from_secs(3600));
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(certificates(&env).await, Vec::<String>::new());
}

#[tokio::test]
async fn someone_elses_record_at_the_name_is_refused_unless_taken_over() {
    let (env, zone) = start().await;
    let address = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name(NAME)
        .r#type(RrType::A)
        .ttl(300)
        .resource_records(
            aws_sdk_route53::types::ResourceRecord::builder()
                .value("192.0.2.10")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let change = aws_sdk_route53::types::Change::builder()
        .action(aws_sdk_route53::types::ChangeAction::Create)
        .resource_record_set(address)
        .build()
        .unwrap();
    route53(&env)
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(change)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let theirs = ("ws.example.com".to_string(), "A".to_string(), "192.0.2.10".to_string());

    let stack = with_domain(&env, "taken", &zone, None);
    let refused = env.run(&stack, &["up"]).await.expect_exit(1);
    for said in ["192.0.2.10", "not this stack's", "take_over_records"] {
        assert!(refused.stderr.contains(said), "{said}: {refused}");
    }
    assert!(
        records(&env, &zone).await.contains(&theirs),
        "their record is untouched"
    );

    // Said so in the file: replaced, and `down` takes the replacement away.
    let text = std::fs::read_to_string(&stack).unwrap() + "  take_over_records: true\n";
    let stack = env.write_stack("stack.yaml", &text);
    env.run(&stack, &["up"]).await.expect_exit(0);
    let certificate = certificates(&env).await[0].clone();
    assert_served(&env, "taken", &zone, &certificate).await;
    env.run(&stack, &["down", "--yes"]).await.expect_exit(0);
    assert_eq!(validation_records_only(&env, &zone).await, 1);
}

/// A certificate for the name deleted between ListCertificates and ListTagsForCertificate (by
/// someone else, or a concurrent `down`): skipped, not a failed lookup.
#[tokio::test]
async fn a_certificate_gone_between_listing_and_tags_is_skipped() {
    let (env, zone) = start().await;
    // Someone else's certificate for the same name, made first: listed first, its tags asked first.
    acm(&env)
        .request_certificate()
        .domain_name(NAME)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap();
    let stack = with_domain(&env, "racing", &zone, None);
    env.run(&stack, &["up"]).await.expect_exit(0);
    env.proxy.inject(testkit::Fault::new(
        "acm",
        "ListTagsForCertificate",
        1,
        400,
        "ResourceNotFoundException",
        "Could not find certificate.",
    ));
    let status = env.run(&stack, &["status", "-o", "json"]).await;
    assert_eq!(status.code, 0, "in sync: {status}");
    assert_eq!(env.proxy.pending_faults(), 0, "the fault was met");
}
