//! Progress of a run: a spinner per resource at work on a terminal (indicatif), one plain line
//! per finished resource otherwise, nothing in quiet or JSON mode.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::{Outcome, Verb};
use crate::resources::{Change, State};

pub struct Progress {
    mode: Mode,
}

enum Mode {
    Silent,
    Lines,
    Bars {
        multi: MultiProgress,
        bars: Mutex<Vec<(String, ProgressBar)>>,
    },
}

impl Progress {
    /// `show`: whether progress is wanted at all (not quiet, not JSON).
    pub fn new(show: bool) -> Progress {
        let mode = if !show {
            Mode::Silent
        } else if std::io::stdout().is_terminal() {
            Mode::Bars {
                multi: MultiProgress::new(),
                bars: Mutex::new(Vec::new()),
            }
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    pub fn start(&self, kind: &str, name: &str, verb: Verb) {
        if let Mode::Bars { multi, bars } = &self.mode {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
            let doing = match verb {
                Verb::Ensure => "applying",
                Verb::Destroy => "deleting",
                Verb::Inspect => "reading",
            };
            bar.set_message(format!("{doing:<11} {kind:<17} {name}"));
            bar.enable_steady_tick(Duration::from_millis(100));
            bars.lock().unwrap().push((format!("{kind}/{name}"), bar));
        }
    }

    pub fn finish(&self, kind: &str, name: &str, outcome: &Outcome) {
        let line = line(kind, name, outcome);
        match &self.mode {
            Mode::Silent => {}
            Mode::Lines => println!("{line}"),
            Mode::Bars { multi, bars } => {
                let key = format!("{kind}/{name}");
                let mut bars = bars.lock().unwrap();
                if let Some(index) = bars.iter().position(|(k, _)| *k == key) {
                    let (_, bar) = bars.remove(index);
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(line);
            }
        }
    }
}

/// `  + created     SQS queue         demo-dev-events`
pub fn line(kind: &str, name: &str, outcome: &Outcome) -> String {
    let (sign, word, details) = describe(outcome);
    let mut line = format!("  {sign} {word:<11} {kind:<17} {name}");
    if !details.is_empty() {
        line.push_str(&format!("  ({details})"));
    }
    line
}

pub fn describe(outcome: &Outcome) -> (&'static str, &'static str, String) {
    match outcome {
        Outcome::Changed(Change::Created) => ("+", "created", String::new()),
        Outcome::Changed(Change::Updated(diffs)) => ("~", "updated", join(diffs)),
        Outcome::Changed(Change::Unchanged) => ("=", "unchanged", String::new()),
        Outcome::Changed(Change::Deleted) => ("-", "deleted", String::new()),
        Outcome::Changed(Change::Absent) => ("=", "absent", String::new()),
        Outcome::Changed(Change::Skipped(why)) => ("!", "skipped", why.clone()),
        Outcome::Inspected(State::Missing) => ("+", "missing", String::new()),
        Outcome::Inspected(State::InSync) => ("=", "present", String::new()),
        Outcome::Inspected(State::Drifted(diffs)) => ("~", "drifted", join(diffs)),
        Outcome::Inspected(State::Foreign(why)) => ("!", "foreign", why.clone()),
        Outcome::Inspected(State::Unwanted) => ("-", "unwanted", "not in the stack file".into()),
        Outcome::Failed(error) => ("x", "failed", error.clone()),
        Outcome::NotAttempted(why) => ("x", "not tried", why.clone()),
    }
}

fn join(diffs: &[crate::resources::Diff]) -> String {
    diffs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
}
