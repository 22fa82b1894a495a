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
            .with(Behaviour::DomainUpdates),
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
        Vec::new(),
        "validation and alias records gone"
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
    assert_eq!(records(&env, &zone).await, Vec::new());
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
