//! `wsstack outputs`: the stack's names, ARNs and URLs for scripts, as `terraform output` gives
//! them; the API id comes from the same tag discovery `status` uses.
//!
//! Reads only the API's tags (plus the caller identity); it does not check that the rest exists.

use serde_json::Value;

use super::Invocation;
use crate::aws::Aws;
use crate::cli::Format;
use crate::discovery;
use crate::render::{self, Failure};

pub async fn run(context: &Invocation) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let aws = Aws::connect(context.config.clone(), context.names.clone()).await?;
    let resolved = discovery::discover(&aws, &stack.name, &stack.stage).await?.resolved();
    let outputs = render::all_outputs(stack, &aws, &resolved);
    match context.cli.output {
        Format::Json => render::print_json(&outputs),
        Format::Text => {
            // `key = value` lines, as `terraform output`, so `grep`/`cut` take them apart.
            for (key, value) in flatten("", &outputs) {
                match value {
                    Value::String(text) => println!("{key} = {text}"),
                    Value::Null => println!("{key} = (not created yet: run `wsstack up`)"),
                    other => println!("{key} = {other}"),
                }
            }
        }
    }
    Ok(0)
}

/// Nested objects as dotted keys (`functions.push.arn`), in the JSON's order.
fn flatten<'a>(prefix: &str, value: &'a Value) -> Vec<(String, &'a Value)> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value)
            })
            .collect(),
        other => vec![(prefix.to_string(), other)],
    }
}
