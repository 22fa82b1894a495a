//! `wsstack plan --cost`: the monthly estimate of `crate::cost` for the stack file and the
//! workload on the command line, as a table or JSON. Reads the stack file only: no AWS call.

use serde_json::json;

use super::bad_input;
use crate::cli::{Cli, Format, PlanArgs};
use crate::cost::{self, Workload, HOURS_PER_MONTH, US_EAST_1};
use crate::render::Failure;
use crate::stack;

pub fn run(cli: &Cli, args: &PlanArgs) -> Result<u8, Failure> {
    let file = stack::load(&cli.file).map_err(bad_input)?;
    let workload = Workload {
        connections: args.connections,
        events_per_second: args.events_per_second,
        subscribers_per_event: args.subscribers_per_event,
        subscriptions_per_connection: args.subscriptions_per_connection,
        message_bytes: args.message_bytes,
    };
    let estimate = cost::estimate(&file.stack, workload, &US_EAST_1);
    let stack = &file.stack;
    match cli.output {
        Format::Json => crate::render::print_json(&json!({
            "command": "plan",
            "stack": stack.name,
            "stage": stack.stage,
            "cost": estimate,
        })),
        Format::Text => {
            println!(
                "{}/{}: a month ({HOURS_PER_MONTH} h) at {} prices read on {}, without free tier",
                stack.name, stack.stage, estimate.prices.region, estimate.prices.read_on
            );
            println!(
                "workload: {} connections, {} events/s to {} subscribers each, {} subscriptions per connection, {}-byte messages",
                grouped(workload.connections as f64),
                workload.events_per_second,
                grouped(workload.subscribers_per_event as f64),
                workload.subscriptions_per_connection,
                workload.message_bytes
            );
            for line in &estimate.lines {
                println!(
                    "  {:<16} {:<28} {:>18} {:<10} {:>12}",
                    line.service,
                    line.item,
                    grouped(line.quantity),
                    line.unit,
                    dollars(line.monthly_usd)
                );
            }
            println!(
                "  {:<16} {:<28} {:>18} {:<10} {:>12}",
                "total",
                "",
                "",
                "",
                dollars(estimate.total_usd)
            );
            if stack
                .region
                .as_deref()
                .is_some_and(|region| region != estimate.prices.region)
            {
                println!("the stack's region has its own prices, mostly within a third of these");
            }
        }
    }
    Ok(0)
}

/// A quantity with thousands separators: whole from 100 on, else with up to three decimals.
fn grouped(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    thousands(&format!("{value:.0}"))
}

fn thousands(digits: &str) -> String {
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `$1,257.04`.
fn dollars(value: f64) -> String {
    let cents = format!("{value:.2}");
    let (whole, fraction) = cents.split_once('.').unwrap_or((&cents, "00"));
    format!("${}.{fraction}", thousands(whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(dollars(1442.9372), "$1,442.94");
        assert_eq!(dollars(0.1), "$0.10");
        assert_eq!(grouped(1_321_300_000.0), "1,321,300,000");
        assert_eq!(grouped(14.454), "14.454");
        assert_eq!(grouped(1.0), "1");
    }
}
