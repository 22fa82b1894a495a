//! The JSON Schema of the stack file, derived (schemars) from the serde types that parse it, with
//! the numeric ranges and the allowed values of the validation table added to it.
//!
//! Never written by hand: a new field or limit reaches the schema from the types and `RANGES`.

use serde_json::{json, Value};

use super::schema::{Stack, KNOWN_ROUTES, LOG_RETENTION_DAYS};
use super::validation::RANGES;

/// The schema as a JSON value (draft 2020-12).
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(Stack).to_value();
    schema["title"] = json!("wsstack stack file");
    for range in RANGES {
        if let Some(field) = field_mut(&mut schema, range.field) {
            field["minimum"] = json!(range.min);
            field["maximum"] = json!(range.max);
        }
    }
    if let Some(field) = field_mut(&mut schema, "handlers.log_retention_days") {
        field["enum"] = json!(LOG_RETENTION_DAYS);
    }
    if let Some(routes) = field_mut(&mut schema, "routes") {
        routes["uniqueItems"] = json!(true);
    }
    // A route by name alone is a bundled one; an own route gives exactly one kind of code.
    if let Some(variants) = schema.pointer_mut("/$defs/Route/anyOf").and_then(Value::as_array_mut) {
        for variant in variants.iter_mut().filter(|v| v["type"] == "string") {
            variant["enum"] = json!(KNOWN_ROUTES);
        }
    }
    if let Some(own) = schema.pointer_mut("/$defs/OwnRoute") {
        own["oneOf"] = json!([{"required": ["code"]}, {"required": ["bootstrap"]}]);
    }
    // The same limits as `validate`'s tag checks: 50 per resource of which wsstack uses 2.
    if let Some(tags) = field_mut(&mut schema, "tags") {
        tags["maxProperties"] = json!(48);
        tags["propertyNames"] =
            json!({"minLength": 1, "maxLength": 128, "not": {"pattern": "^([aA][wW][sS]|wsstack):"}});
        tags["additionalProperties"]["maxLength"] = json!(256);
    }
    schema
}

/// The schema of a dotted field (`handlers.memory_mb`), following `$ref`s into `$defs`.
fn field_mut<'a>(schema: &'a mut Value, field: &str) -> Option<&'a mut Value> {
    let mut pointer = String::new();
    for segment in field.split('.') {
        if let Some(reference) = schema.pointer(&pointer).and_then(|s| s["$ref"].as_str()) {
            pointer = reference.strip_prefix('#')?.to_string();
        }
        pointer.push_str("/properties/");
        pointer.push_str(segment);
    }
    schema.pointer_mut(&pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_enums_reach_the_schema() {
        let mut schema = json_schema();
        let memory = field_mut(&mut schema, "handlers.memory_mb")
            .expect("memory_mb in the schema")
            .clone();
        assert_eq!(
            (memory["minimum"].as_u64(), memory["maximum"].as_u64()),
            (Some(128), Some(10_240))
        );
        let wait = field_mut(&mut schema, "queue.dead_letter.max_receive_count")
            .expect("nested field")
            .clone();
        assert_eq!(wait["maximum"], json!(1000));
        // Every range of the validation table has found its field.
        for range in RANGES {
            let field = field_mut(&mut schema, range.field).unwrap_or_else(|| panic!("{} in the schema", range.field));
            assert_eq!(field["maximum"], json!(range.max), "{}", range.field);
        }
        assert_eq!(schema["additionalProperties"], json!(false));
    }
}
