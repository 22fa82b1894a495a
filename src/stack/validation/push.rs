//! The checks of `handlers.push` beyond its ranges: one chunk must fit in an invocation at its share
//! of the post budget, and every invocation must get a share. No AWS call.

use super::super::schema::{Handlers, DIRECT_SHARE};
use super::Problem;

/// The share of the function timeout one chunk's posts may take at the invocation's rate; the rest
/// is for the subscriber query, retries and the answer.
const CHUNK_SHARE_OF_TIMEOUT: f64 = 0.5;

pub(super) fn check(problems: &mut Vec<Problem>, handlers: &Handlers) {
    // An invocation that cannot post one chunk within its timeout at its share of the budget would
    // hand the chunk back forever.
    let push = &handlers.push;
    let chunk_seconds = f64::from(push.chunk_size) / push.chunk_posts_per_second();
    if push.max_posts_per_second >= push.max_concurrency
        && chunk_seconds > f64::from(handlers.timeout_seconds) * CHUNK_SHARE_OF_TIMEOUT
    {
        problems.push(Problem::new(
            "handlers.push.chunk_size",
            format!(
                "a chunk of {} posts takes {chunk_seconds:.1} s at {:.0} posts/s per invocation (95% of max_posts_per_second / max_concurrency), more than {:.0}% of handlers.timeout_seconds ({} s): use smaller chunks, a larger budget, fewer invocations or a longer timeout",
                push.chunk_size,
                push.chunk_posts_per_second(),
                CHUNK_SHARE_OF_TIMEOUT * 100.0,
                handlers.timeout_seconds
            ),
        ));
    }
    // The smaller share is the events invocations': below one post per second, an event to one
    // subscriber would hold its invocation for seconds (the pace holds it one interval per post).
    if push.direct_posts_per_second() < 1.0 {
        problems.push(Problem::new(
            "handlers.push.max_posts_per_second",
            format!(
                "{} posts/s shared by {} invocations of each queue (handlers.push.max_concurrency) leaves the events queue's invocations {:.2} posts/s each ({:.0}% of the budget), less than one: at least {} posts/s for {} invocations",
                push.max_posts_per_second,
                push.max_concurrency,
                push.direct_posts_per_second(),
                DIRECT_SHARE * 100.0,
                (f64::from(push.max_concurrency) / DIRECT_SHARE).ceil(),
                push.max_concurrency
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(push: &str) -> String {
        let text = format!("name: demo\nhandlers:\n  timeout_seconds: 10\n  push:\n{push}");
        match crate::stack::parse(Path::new("stack.yaml"), &text) {
            Ok(_) => String::new(),
            Err(errors) => errors.to_string(),
        }
    }

    #[test]
    fn a_chunk_must_fit_in_half_the_timeout_at_one_invocations_share() {
        // 1,000 posts at 95% of 2,000 / 5 = 380 posts/s: 2.6 s of 10.
        assert_eq!(errors("    chunk_size: 1000\n"), "");
        // 10,000 posts at 380 posts/s: 26.3 s.
        let error = errors("    chunk_size: 10000\n");
        assert!(error.contains("stack.yaml:5:17"), "{error}");
        assert!(error.contains("handlers.push.chunk_size"), "{error}");
        assert!(
            error.contains("a chunk of 10000 posts takes 26.3 s at 380 posts/s per invocation"),
            "{error}"
        );
        // The same chunk with the whole account quota over two invocations: 2.1 s.
        assert_eq!(
            errors("    chunk_size: 10000\n    max_posts_per_second: 10000\n    max_concurrency: 2\n"),
            ""
        );
    }

    #[test]
    fn every_invocation_gets_at_least_one_post_per_second() {
        let error = errors("    max_posts_per_second: 99\n    max_concurrency: 5\n    chunk_size: 1\n");
        assert!(error.contains("handlers.push.max_posts_per_second"), "{error}");
        assert!(
            error.contains("99 posts/s shared by 5 invocations of each queue (handlers.push.max_concurrency) leaves the events queue's invocations 0.99 posts/s each (5% of the budget), less than one: at least 100 posts/s for 5 invocations"),
            "{error}"
        );
        assert_eq!(
            errors("    max_posts_per_second: 100\n    max_concurrency: 5\n    chunk_size: 1\n"),
            ""
        );
    }
}
