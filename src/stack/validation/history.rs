//! The checks of `history`: a window a reconnecting client can use, and a replay one invocation of
//! `subscribe` or `resume` can post. No AWS call.

use super::super::schema::History;
use super::Problem;

/// A day: a client away longer refetches its state; every event is stored (and paid for) this long.
const MAX_WINDOW_SECONDS: u32 = 86_400;

/// A replay is posted one frame at a time inside one route invocation (a few milliseconds each on
/// API Gateway): ten thousand would outlast any route handler's timeout, and a client that missed
/// that many is better served by refetching.
const MAX_REPLAY: u32 = 10_000;

pub(super) fn check(problems: &mut Vec<Problem>, history: &History) {
    if history.window_seconds > MAX_WINDOW_SECONDS {
        problems.push(Problem::new(
            "history.window_seconds",
            format!(
                "{} is out of range: 0 (no history) to {MAX_WINDOW_SECONDS} seconds (a day; a client away longer refetches)",
                history.window_seconds
            ),
        ));
    }
    if !(1..=MAX_REPLAY).contains(&history.max_replay) {
        problems.push(Problem::new(
            "history.max_replay",
            format!(
                "{} is out of range: 1 to {MAX_REPLAY} events (a replay is posted within one route invocation; a client that missed more resyncs)",
                history.max_replay
            ),
        ));
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
    fn a_window_past_a_day_and_an_empty_replay_are_refused_where_they_are_written() {
        let e = errors("name: demo\nhistory:\n  window_seconds: 90000\n  max_replay: 0\n");
        assert!(
            e.contains(
                "stack.yaml:3:19: history.window_seconds: 90000 is out of range: 0 (no history) to 86400 seconds"
            ),
            "{e}"
        );
        assert!(
            e.contains("stack.yaml:4:15: history.max_replay: 0 is out of range: 1 to 10000 events"),
            "{e}"
        );
    }

    #[test]
    fn no_history_and_the_limits_themselves_are_accepted() {
        for text in [
            "name: demo\nhistory: {window_seconds: 0}\n",
            "name: demo\nhistory: {window_seconds: 86400, max_replay: 10000}\n",
            "name: demo\nhistory: {window_seconds: 1, max_replay: 1}\n",
        ] {
            crate::stack::parse(Path::new("stack.yaml"), text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
}
