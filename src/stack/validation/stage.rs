//! The checks of the stage's settings: `throttle` within API Gateway's account-wide quota, and its
//! per-route overrides naming routes the stack has. No AWS call.

use super::super::schema::{Stack, Throttle};
use super::Problem;

/// API Gateway's default account-wide quota per region (requests per second, and the burst): a
/// stage or route limit above it could only be throttled by the account's. Some newer regions
/// have 2,500 rps; an account may have a raised quota, which this check does not know.
const MAX_RATE: f64 = 10_000.0;
const MAX_BURST: u32 = 5_000;

fn check_limits(problems: &mut Vec<Problem>, field: &str, rate: f64, burst: u32) {
    if !rate.is_finite() || !(0.0..=MAX_RATE).contains(&rate) {
        problems.push(Problem::new(
            format!("{field}.rate"),
            format!(
                "{rate} is out of range: 0 to {MAX_RATE} requests per second (API Gateway's default account quota)"
            ),
        ));
    }
    if burst > MAX_BURST {
        problems.push(Problem::new(
            format!("{field}.burst"),
            format!("{burst} is out of range: 0 to {MAX_BURST} requests (API Gateway's default account burst)"),
        ));
    }
}

pub(super) fn check(problems: &mut Vec<Problem>, stack: &Stack) {
    let Some(Throttle { rate, burst, routes }) = &stack.throttle else {
        return;
    };
    check_limits(problems, "throttle", *rate, *burst);
    for (key, limits) in routes {
        let field = format!("throttle.routes.{key}");
        let known = key == "$connect" || key == "$disconnect" || stack.routes.iter().any(|r| r.name() == key);
        if !known {
            let mut keys = vec!["$connect".to_string(), "$disconnect".to_string()];
            keys.extend(stack.routes.iter().map(|r| r.name().to_string()));
            problems.push(Problem::at_key(
                field.clone(),
                format!("`{key}` is not a route of this stack: use one of {}", keys.join(", ")),
            ));
        }
        check_limits(problems, &field, limits.rate, limits.burst);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(text: &str) -> String {
        crate::stack::parse(Path::new("stack.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn limits_past_the_account_quota_are_refused_where_they_are_written() {
        let text = "name: demo\nthrottle:\n  rate: 20000\n  burst: 6000\n";
        let e = errors(text);
        assert!(
            e.contains("stack.yaml:3:9: throttle.rate: 20000 is out of range: 0 to 10000 requests per second"),
            "{e}"
        );
        assert!(
            e.contains("stack.yaml:4:10: throttle.burst: 6000 is out of range: 0 to 5000"),
            "{e}"
        );
    }

    #[test]
    fn a_route_override_must_name_a_route_of_the_stack() {
        let text = "name: demo\nthrottle:\n  rate: 100\n  burst: 50\n  routes:\n    $connect: {rate: 10, burst: 5}\n    publish: {rate: 1, burst: 1}\n    subscribe: {rate: 1, burst: 9000}\n";
        let e = errors(text);
        assert!(
            e.contains("stack.yaml:7:5: throttle.routes.publish: `publish` is not a route of this stack: use one of $connect, $disconnect, subscribe, unsubscribe"),
            "{e}"
        );
        assert!(
            e.contains("throttle.routes.subscribe.burst: 9000 is out of range"),
            "{e}"
        );
        assert!(!e.contains("throttle.routes.$connect"), "{e}");
    }

    #[test]
    fn limits_within_the_quota_are_read() {
        let text =
            "name: demo\nthrottle:\n  rate: 0.5\n  burst: 0\n  routes:\n    $connect: {rate: 10000, burst: 5000}\n";
        let stack = crate::stack::parse(Path::new("stack.yaml"), text).unwrap();
        let throttle = stack.throttle.unwrap();
        assert_eq!((throttle.rate, throttle.burst), (0.5, 0));
        assert_eq!(throttle.routes["$connect"].burst, 5000);
        assert!(stack.access_logs, "access logs are on by default");
        let off = crate::stack::parse(Path::new("stack.yaml"), "name: demo\naccess_logs: false\n").unwrap();
        assert!(!off.access_logs);
    }
}
