//! `wsstack dev`'s open-file budget: every WebSocket client holds one descriptor, so the soft
//! RLIMIT_NOFILE is raised to the hard limit at start, and a watch warns (with the numbers and what
//! to do) when open descriptors near it. Only observes and warns; never refuses connections.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Warn at this share of the limit; warn again only after dropping below [`REARM_SHARE`].
const WARN_SHARE: f64 = 0.9;
const REARM_SHARE: f64 = 0.8;
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
pub fn raise_to_hard_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        } else {
            // An unlimited hard limit can be above what the kernel allows (fs.nr_open): keep the
            // soft one, which still works.
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, soft = limit.rlim_cur, "the open-file limit stays where it was");
        }
    }
    Ok(limit.rlim_cur)
}

/// Descriptors this process has open (Linux: the entries of /proc/self/fd); `None` elsewhere.
pub fn open_descriptors() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The warning for `open` descriptors out of `limit`, when it is due.
pub fn warning(open: u64, limit: u64) -> Option<String> {
    (open as f64 >= limit as f64 * WARN_SHARE).then(|| {
        format!(
            "wsstack dev: {open} of {limit} open files in use ({}%): each WebSocket client holds one, and at \
             the limit new clients are refused. Raise the hard limit (`ulimit -Hn`, LimitNOFILE in systemd) \
             or run fewer clients against this dev",
            open * 100 / limit.max(1)
        )
    })
}

/// Checks every second until `stop`; logs the warning once each time usage crosses 90%.
pub async fn watch(limit: u64, stop: CancellationToken) {
    let mut armed = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        let Some(open) = open_descriptors() else {
            return;
        };
        match warning(open, limit) {
            Some(message) if armed => {
                armed = false;
                tracing::warn!(open, limit, "{message}");
            }
            None if (open as f64) < limit as f64 * REARM_SHARE => armed = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let limit = raise_to_hard_limit().unwrap();
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(now.rlim_cur, now.rlim_max);
        assert_eq!(limit, now.rlim_cur);
        assert!(open_descriptors().unwrap() > 0);
    }

    #[test]
    fn the_warning_names_the_numbers_from_ninety_percent_on() {
        assert_eq!(warning(17_999, 20_000), None);
        let message = warning(18_000, 20_000).unwrap();
        assert!(message.contains("18000 of 20000 open files"), "{message}");
        assert!(message.contains("ulimit -Hn"), "{message}");
    }
}
