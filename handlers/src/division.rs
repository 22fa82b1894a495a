//! How the push function divides an event's fan-out: how many posts an invocation of the events
//! queue makes itself, and how large the chunks of the rest are. Pure, and built for the CLI too
//! (`plan --cost` counts the chunk invocations the handler will make).

/// How long the posts an invocation of the events queue makes itself may take at its direct rate:
/// events with more recipients than fit are chunked, so that the extra SQS round trip is paid only
/// where posting would take longer than it.
const DIRECT_SECONDS: f64 = 0.25;
/// The least time a chunk's posts take at an invocation's rate: smaller chunks would spend more of
/// their invocation on SQS and Lambda than on posting.
const MIN_CHUNK_SECONDS: f64 = 0.1;

/// The most posts an invocation of the events queue makes itself, over all the records of its
/// batch: a quarter of a second of posts at `direct_rate`, at least one; without a rate, a chunk.
pub fn direct_limit(direct_rate: Option<f64>, chunk_size: usize) -> usize {
    match direct_rate {
        Some(rate) => ((rate * DIRECT_SECONDS) as usize).max(1),
        None => chunk_size,
    }
}

/// The connections in each chunk of an event with `recipients` recipients (the last chunk takes what
/// is left): one chunk per invocation the chunk queue runs at once (`invocations`), so that all of
/// them post it, but chunks no shorter than a tenth of a second of posts at `chunk_rate` and no
/// longer than `chunk_size`.
pub fn chunk_length(recipients: usize, chunk_size: usize, invocations: usize, chunk_rate: Option<f64>) -> usize {
    let least = chunk_rate.map_or(1, |rate| (rate * MIN_CHUNK_SECONDS).ceil() as usize);
    recipients
        .div_ceil(invocations.max(1))
        .max(least)
        .min(chunk_size)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_divided_among_every_invocation_in_chunks_worth_their_round_trip() {
        // The shipped stack: 2,000 posts/s over 5 invocations of each queue, 5% for direct posts.
        let (direct, chunk) = (Some(20.0), Some(380.0));
        assert_eq!(direct_limit(direct, 1_000), 5);
        assert_eq!(direct_limit(Some(0.5), 1_000), 1, "always at least one");
        assert_eq!(direct_limit(None, 1_000), 1_000);
        // 1,000 subscribers: five chunks of 200, one per invocation.
        assert_eq!(chunk_length(1_000, 1_000, 5, chunk), 200);
        // 15,000: chunks no larger than chunk_size.
        assert_eq!(chunk_length(15_000, 1_000, 5, chunk), 1_000);
        // 50: one chunk of 38 (a tenth of a second at 380/s) and one of 12, not five of 10.
        assert_eq!(chunk_length(50, 1_000, 5, chunk), 38);
        assert_eq!(chunk_length(50, 1_000, 5, None), 10);
        assert_eq!(chunk_length(7, 3, 1, None), 3);
        // 190 and more: one chunk per invocation again.
        assert_eq!(chunk_length(190, 1_000, 5, chunk), 38);
        assert_eq!(chunk_length(191, 1_000, 5, chunk), 39);
    }
}
