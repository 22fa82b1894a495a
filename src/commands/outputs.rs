//! `wsstack outputs`: the stack's names, ARNs and URLs for scripts, as `terraform output` gives
//! them; the API id comes from the same tag discovery `status` uses.
//!
//! Reads only the API's tags (plus the caller identity); it does not check that the rest exists.

use serde_json::Value;

use super::Context;
use crate::aws::Aws;
use crate::cli::Format;
use crate::render::{self, Failure};
use crate::resources;

pub async fn run(context: &Context) -> Result<u8, Failure> {
    let stack = &context.file.stack;
    let aws = Aws::connect(context.config.clone(), context.names.clone()).await?;
    let resolved = resources::api::discover(&aws, &stack.name, &stack.stage).await?;
    let outputs = render::all_outputs(stack, &aws, &resolved);
    match context.cli.output {
        Format::Json => render::print_json(&outputs),
        Format::Text => {
            if let Value::Object(map) = &outputs {
                for (key, value) in map {
                    // `key = value` lines, as `terraform output`, so `grep`/`cut` take them apart.
                    match value {
                        Value::String(text) => println!("{key} = {text}"),
                        Value::Null => println!("{key} = (not created yet: run `wsstack up`)"),
                        other => println!("{key} = {other}"),
                    }
                }
            }
        }
    }
    Ok(0)
}
