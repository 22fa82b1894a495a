//! `schema`, `init` and `completions`: the stack file's JSON Schema checked by an independent
//! validator (Python's jsonschema) against wsstack's own verdict on the shipped stack and the
//! bad-stack corpus; `init`'s files and refusal; completion scripts for bash, zsh and fish;
//! `plan --cost`, which needs the stack file alone.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{wsstack_binary, Env};

fn wsstack(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(wsstack_binary())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run wsstack")
}

/// The independent verdict: true when the schema accepts the document.
fn schema_accepts(schema: &Path, documents: &[std::path::PathBuf]) -> BTreeMap<String, (bool, String)> {
    let root = testkit::repo_root();
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/tools/validate_json_schema.py"))
        .arg(schema)
        .args(documents)
        .output()
        .expect("run the validator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut verdicts = BTreeMap::new();
    let mut last = None;
    for line in stdout.lines() {
        let (ok, rest) = if let Some(rest) = line.strip_prefix("ok ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("invalid ") {
            (false, rest)
        } else {
            // A multi-line parse error continues the previous document's line.
            continue;
        };
        let path = rest.split(": ").next().unwrap_or(rest).to_string();
        let file = Path::new(&path).file_name().unwrap().to_string_lossy().into_owned();
        verdicts.insert(file.clone(), (ok, line.to_string()));
        last = Some(file);
    }
    assert!(last.is_some(), "validator printed nothing: {output:?}");
    verdicts
}

/// Corpus files where the schema and wsstack must disagree, and why a JSON Schema cannot see it.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "duplicate_nested_key.yaml",
        "a repeated key is a YAML-level error; the YAML loader keeps the last value before any schema sees it",
    ),
    (
        "duplicate_top_level_key.yaml",
        "a repeated key is a YAML-level error; the YAML loader keeps the last value before any schema sees it",
    ),
    (
        "auth_secret_and_issuer.yaml",
        "`auth:` takes `secret` or `issuer`, not both: a rule between two fields, which the derived schema does not carry",
    ),
];

#[tokio::test]
async fn schema_and_wsstack_agree_on_the_shipped_stack_and_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = dir.path().join("stack.schema.json");
    let schema = wsstack(&["schema"], dir.path());
    assert!(schema.status.success(), "{schema:?}");
    std::fs::write(&schema_path, &schema.stdout).unwrap();

    let root = testkit::repo_root();
    let mut corpus: Vec<_> = std::fs::read_dir(root.join("tests/corpus/stacks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    corpus.sort();
    assert!(corpus.len() >= 40, "the corpus is there: {corpus:?}");
    let mut documents = corpus.clone();
    documents.push(root.join("stack.yaml"));
    let verdicts = schema_accepts(&schema_path, &documents);

    // The shipped stack: the schema accepts it, and so does wsstack (a plan against moto).
    assert!(verdicts["stack.yaml"].0, "{:?}", verdicts["stack.yaml"]);
    let env = Env::start().await;
    let plan = env.run(&root.join("stack.yaml"), &["plan"]).await;
    assert_eq!(
        plan.code, 3,
        "wsstack accepts the shipped stack and plans its creation: {plan}"
    );

    // Every corpus file is refused by wsstack with exit 2 before any AWS call (no endpoint at all).
    let mut disagreements = Vec::new();
    for path in &corpus {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let run = wsstack(&["-f", path.to_str().unwrap(), "plan"], dir.path());
        assert_eq!(run.status.code(), Some(2), "{file}: {run:?}");
        let (schema_ok, line) = &verdicts[&file];
        let expected_to_differ = EXCEPTIONS.iter().any(|(f, _)| *f == file);
        if *schema_ok != expected_to_differ {
            disagreements.push(format!(
                "{file}: schema {}, wsstack refuses (exit 2){}: {line}",
                if *schema_ok { "accepts" } else { "refuses" },
                if expected_to_differ {
                    ", listed as an exception"
                } else {
                    ""
                }
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Stack files the schema accepts and wsstack refuses, by design: rules a JSON Schema cannot
/// express. Each is written here, checked on both sides, so none goes unnoticed.
const NOT_IN_THE_SCHEMA: &[(&str, &str, &str)] = &[
    (
        "visibility_below_timeout.yaml",
        "name: demo\nqueue:\n  visibility_timeout_seconds: 5\nhandlers:\n  timeout_seconds: 10\n",
        "cross-field: the queue's visibility timeout must be at least the function timeout",
    ),
    (
        "derived_name_too_long.yaml",
        "name: a-stack-name-that-is-long-enough-to-push-the-role-names-beyond-sixty-four\n",
        "derived names (name + stage + region + suffix) must fit AWS limits: a computation, not a pattern",
    ),
    (
        "aws_source.yaml",
        "name: demo\nevents:\n  source: aws.s3\n",
        "`aws.` sources are reserved by EventBridge: a negative prefix rule kept in validation",
    ),
];

#[test]
fn what_the_schema_cannot_express_is_refused_by_wsstack() {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = dir.path().join("stack.schema.json");
    std::fs::write(&schema_path, wsstack(&["schema"], dir.path()).stdout).unwrap();
    let mut files = Vec::new();
    for (file, text, _why) in NOT_IN_THE_SCHEMA {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let verdicts = schema_accepts(&schema_path, &files);
    for ((file, _, why), path) in NOT_IN_THE_SCHEMA.iter().zip(&files) {
        assert!(
            verdicts[*file].0,
            "{file} ({why}): the schema now refuses it; move it to the corpus"
        );
        let run = wsstack(
            &["-f", path.to_str().unwrap(), "--region", "us-east-1", "plan"],
            dir.path(),
        );
        assert_eq!(run.status.code(), Some(2), "{file} ({why}): {run:?}");
    }
}

#[test]
fn the_schema_describes_routes_of_your_own() {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = dir.path().join("stack.schema.json");
    std::fs::write(&schema_path, wsstack(&["schema"], dir.path()).stdout).unwrap();
    std::fs::write(dir.path().join("bootstrap"), b"#!/bin/sh\n").unwrap();
    let own = "name: demo\nroutes:\n  - subscribe\n  - name: sendMessage\n    bootstrap: ./bootstrap\n    schema: {type: object}\n  - name: $default\n    bootstrap: ./bootstrap\n";
    let cases = [
        ("own.yaml", own.to_string(), true),
        (
            "both.yaml",
            own.replace("    schema:", "    code: ./x.zip\n    schema:"),
            false,
        ),
        (
            "neither.yaml",
            "name: demo\nroutes:\n  - name: sendMessage\n".to_string(),
            false,
        ),
        ("bad_key.yaml", own.replace("sendMessage", "send message"), false),
    ];
    let mut files = Vec::new();
    for (file, text, _) in &cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let verdicts = schema_accepts(&schema_path, &files);
    for ((file, _, valid), path) in cases.iter().zip(&files) {
        assert_eq!(verdicts[*file].0, *valid, "{file}: {:?}", verdicts[*file]);
        let run = wsstack(&["-f", path.to_str().unwrap(), "asyncapi"], dir.path());
        assert_eq!(run.status.success(), *valid, "wsstack agrees on {file}: {run:?}");
    }
}

#[test]
fn init_writes_the_stack_and_its_schema_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new-stack");
    let run = wsstack(&["init", target.to_str().unwrap()], dir.path());
    assert!(run.status.success(), "{run:?}");
    let stack = std::fs::read_to_string(target.join("stack.yaml")).unwrap();
    assert_eq!(
        stack.lines().next(),
        Some("# yaml-language-server: $schema=./stack.schema.json")
    );
    let shipped = std::fs::read_to_string(testkit::repo_root().join("stack.yaml")).unwrap();
    assert!(stack.ends_with(&shipped), "the shipped stack, comments and all");
    let schema = std::fs::read_to_string(target.join("stack.schema.json")).unwrap();
    let printed = wsstack(&["schema"], dir.path());
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&schema).unwrap(), printed);
    let verdicts = schema_accepts(&target.join("stack.schema.json"), &[target.join("stack.yaml")]);
    assert!(verdicts["stack.yaml"].0, "{verdicts:?}");

    // A second init refuses with exit 2 and leaves both files as they were.
    std::fs::write(target.join("stack.yaml"), "name: mine\n").unwrap();
    let again = wsstack(&["init", target.to_str().unwrap()], dir.path());
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(target.join("stack.yaml")).unwrap(),
        "name: mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("stack.schema.json")).unwrap(),
        schema
    );
}

/// The subcommands `wsstack --help` lists.
fn subcommands(dir: &Path) -> Vec<String> {
    let help = wsstack(&["--help"], dir);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let section = help.split("Commands:").nth(1).expect("a Commands section");
    section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn completions_name_every_subcommand_and_bash_parses_its_script() {
    let dir = tempfile::tempdir().unwrap();
    let commands = subcommands(dir.path());
    assert!(commands.len() >= 11, "{commands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let run = wsstack(&["completions", shell], dir.path());
        assert!(run.status.success(), "{shell}: {run:?}");
        let script = String::from_utf8_lossy(&run.stdout);
        assert!(!script.trim().is_empty(), "{shell}");
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} script lacks `{command}`");
        }
        if shell == "bash" {
            let path = dir.path().join("wsstack.bash");
            std::fs::write(&path, script.as_bytes()).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(check.status.success(), "bash -n: {check:?}");
        }
    }
}

/// The token rules of `auth:` are in the schema with wsstack's own bounds and defaults: a token
/// without the entities claim subscribes to nothing unless the file says `all`, and a token lives
/// at most a day unless the file says otherwise (5 s to 30 days).
#[test]
fn the_schema_carries_the_token_rules_of_auth() {
    let dir = tempfile::tempdir().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&wsstack(&["schema"], dir.path()).stdout).unwrap();
    let auth = &schema["$defs"]["Auth"]["properties"];
    let lifetime = &auth["max_token_lifetime_seconds"];
    assert_eq!(
        (&lifetime["default"], &lifetime["minimum"], &lifetime["maximum"]),
        (
            &serde_json::json!(86_400),
            &serde_json::json!(5),
            &serde_json::json!(2_592_000)
        ),
        "{lifetime}"
    );
    assert_eq!(auth["entities_when_unclaimed"]["default"], "none");
    assert_eq!(
        schema["$defs"]["EntitiesWhenUnclaimed"]["enum"],
        serde_json::json!(["none", "all"])
    );

    let schema_path = dir.path().join("stack.schema.json");
    std::fs::write(&schema_path, serde_json::to_vec(&schema).unwrap()).unwrap();
    let opted_in = dir.path().join("opted_in.yaml");
    std::fs::write(
        &opted_in,
        "name: demo\nauth:\n  secret: generated\n  entities_when_unclaimed: all\n  max_token_lifetime_seconds: 3600\n",
    )
    .unwrap();
    let too_short = dir.path().join("too_short.yaml");
    std::fs::write(
        &too_short,
        "name: demo\nauth:\n  secret: generated\n  max_token_lifetime_seconds: 4\n",
    )
    .unwrap();
    let verdicts = schema_accepts(&schema_path, &[opted_in, too_short.clone()]);
    assert!(verdicts["opted_in.yaml"].0, "{:?}", verdicts["opted_in.yaml"]);
    assert!(!verdicts["too_short.yaml"].0, "{:?}", verdicts["too_short.yaml"]);
    let run = wsstack(
        &["-f", too_short.to_str().unwrap(), "--region", "us-east-1", "plan"],
        dir.path(),
    );
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("too_short.yaml:4:31: auth.max_token_lifetime_seconds: 4 is out of range"),
        "{stderr}"
    );
}

/// `plan --cost` reads the stack file alone (no AWS endpoint, no credentials) and prints each
/// service's part and their sum; a bad workload flag exits 2.
#[test]
fn plan_cost_prices_the_stack_file_without_aws() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testkit::repo_root().join("stack.yaml"), dir.path().join("stack.yaml")).unwrap();
    let args = [
        "plan",
        "--cost",
        "--connections",
        "10000",
        "--events-per-second",
        "5",
        "--subscribers-per-event",
        "100",
        "-o",
        "json",
    ];
    let output = wsstack(&args, dir.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cost = &document["cost"];
    let lines = cost["lines"].as_array().unwrap();
    let services: BTreeSet<&str> = lines.iter().map(|l| l["service"].as_str().unwrap()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["API Gateway", "CloudWatch", "DynamoDB", "EventBridge", "Lambda", "SQS"])
    );
    let sum: f64 = lines.iter().map(|l| l["monthly_usd"].as_f64().unwrap()).sum();
    assert!((cost["total_usd"].as_f64().unwrap() - sum).abs() < 1e-6);
    assert_eq!(cost["prices"]["region"], "us-east-1");
    let text = wsstack(&args[..8], dir.path());
    assert!(String::from_utf8_lossy(&text.stdout).contains("$1,257.04"));
    let bad = wsstack(&["plan", "--cost", "--events-per-second=-1"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a number of 0 or more"));
}
