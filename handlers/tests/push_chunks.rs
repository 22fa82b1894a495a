//! Chunked delivery against SQS and DynamoDB in moto and the management API stand-in: the push
//! handler splits a large fan-out into chunk messages (on its own queue, or on the chunk queue as
//! the stack sets it), invocations driven here the way the event source mapping drives them take
//! them up, and the stand-in counts the posts each connection receives. Exactly once when nothing fails; when an invocation dies mid-chunk (killed,
//! or its deadline comes), everyone still gets the event and duplicates stay within that chunk.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use tokio::time::Instant;
use wsstack_handlers::{chunks, push, App, PushSettings};

/// The queue `common::sqs_event` names as every record's eventSourceARN.
const QUEUE: &str = "wsstack-test-push";
const SUBSCRIBERS: usize = 5_000;
/// Small chunks, so that a debug build on a busy machine posts one well within an invocation.
const CHUNK: usize = 250;

/// Chunked settings. A post may take 15 s: a post that timed out may still have been counted by
/// the stand-in, and its retry is a duplicate outside the chunk a test cuts. On a starved machine
/// the stand-in (in this process) answered some posts after the 5 s default.
fn chunked(posts_per_second: f64) -> PushSettings {
    PushSettings {
        chunk_size: Some(CHUNK),
        posts_per_second: Some(posts_per_second),
        post_timeout: Duration::from_secs(15),
        ..quick_retries()
    }
}

/// The push queue in moto.
struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    /// The body of every message an invocation handed back in batchItemFailures, in order.
    handed_back: std::sync::Mutex<Vec<String>>,
}

/// The push queue, and the stack's subscribers of `hot` (plus a few of another entity).
async fn setup(stack: &Stack, visibility_seconds: u32) -> Queue {
    let queue = Queue::create(stack, visibility_seconds).await;
    let mut fixtures = subscribers(0, SUBSCRIBERS, "hot");
    // Followers of another entity, who must get nothing.
    fixtures.extend(subscribers(SUBSCRIBERS, 50, "cold"));
    stack.put_items(fixtures).await;
    queue
}

impl Queue {
    /// The queue the records of `sqs_event` come from.
    async fn create(stack: &Stack, visibility_seconds: u32) -> Queue {
        Queue::create_named(stack, QUEUE, visibility_seconds).await
    }

    async fn create_named(stack: &Stack, name: &str, visibility_seconds: u32) -> Queue {
        let sqs = aws_sdk_sqs::Client::new(&sdk_config(&stack.moto.endpoint()).await);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_seconds.to_string())
            .send()
            .await
            .expect("creating the push queue")
            .queue_url
            .unwrap();
        Queue {
            sqs,
            url,
            handed_back: Default::default(),
        }
    }

    /// What the EventBridge rule does.
    async fn send_event(&self) {
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(eventbridge_body("hot", "price changed"))
            .send()
            .await
            .expect("sending the event");
    }

    /// Messages waiting (ApproximateNumberOfMessages).
    async fn depth(&self) -> usize {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("reading the queue's depth");
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    async fn receive(&self, batch: i32) -> Vec<(String, String, String)> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(batch)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receiving");
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.message_id.unwrap(), m.receipt_handle.unwrap(), m.body.unwrap()))
            .collect()
    }

    /// Every chunk message waiting, parsed (received, and left to come back after the visibility
    /// timeout).
    async fn chunks(&self) -> Vec<chunks::Chunk> {
        let mut queued = Vec::new();
        loop {
            let messages = self.receive(10).await;
            if messages.is_empty() {
                return queued;
            }
            queued.extend(
                messages
                    .into_iter()
                    .map(|(_, _, body)| chunks::parse(Some(&body)).expect("a chunk message").unwrap()),
            );
        }
    }

    /// One invocation over up to `batch` messages, as the event source mapping runs it: the records
    /// not in batchItemFailures are deleted. Returns how many messages it took.
    async fn invoke(&self, app: &App, batch: i32, time: Duration) -> usize {
        let messages = self.receive(batch).await;
        if messages.is_empty() {
            return 0;
        }
        let records: Vec<(&str, &str)> = messages
            .iter()
            .map(|(id, _, body)| (id.as_str(), body.as_str()))
            .collect();
        let response = push::push(app, sqs_event(&records), Instant::now() + time).await;
        for (id, receipt, body) in &messages {
            if response.batch_item_failures.iter().any(|f| &f.item_identifier == id) {
                self.handed_back.lock().unwrap().push(body.clone());
            } else {
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("deleting");
            }
        }
        messages.len()
    }

    /// `workers` invocations at a time until every subscriber got the event and the queue is empty.
    async fn drain(&self, app: &App, gateway: &Gateway, workers: usize, batch: i32, time: Duration) {
        self.drain_to(app, gateway, SUBSCRIBERS, workers, batch, time).await
    }

    /// [`Queue::drain`] for `subscribers` subscribers.
    async fn drain_to(
        &self,
        app: &App,
        gateway: &Gateway,
        subscribers: usize,
        workers: usize,
        batch: i32,
        time: Duration,
    ) {
        let started = std::time::Instant::now();
        let worker = || async {
            loop {
                let taken = self.invoke(app, batch, time).await;
                if taken == 0 && gateway.delivered_counts().len() >= subscribers {
                    return;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "not everyone got the event"
                );
            }
        };
        futures::future::join_all((0..workers).map(|_| worker())).await;
    }
}

fn hot_subscribers() -> BTreeSet<String> {
    (0..SUBSCRIBERS).map(connection_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_of_5000_gets_the_event_exactly_once_through_chunks() {
    let stack = Stack::start().await;
    let queue = setup(&stack, 30).await;
    // Pages of 400 keep the subscriber query paginated. Invocations get all the time they need:
    // here nothing fails.
    let app = stack.app(Some(400), chunked(1_000.0)).await;
    queue.send_event().await;

    // The invocation that gets the event only splits it: no post, twenty chunks queued.
    // Reading 5,000 subscribers from moto takes seconds: the splitting invocation gets more time.
    assert_eq!(queue.invoke(&app, 10, Duration::from_secs(30)).await, 1);
    assert!(stack.gateway.posts().is_empty(), "the splitting invocation posted");
    // Two chunks an invocation: each posts its share well within its time even on a loaded
    // machine (ten, 2,500 posts at one invocation's share of the budget, took most of it, and a
    // chunk cut at the deadline comes back as duplicates).
    queue.drain(&app, &stack.gateway, 3, 2, Duration::from_secs(25)).await;

    let counts = stack.gateway.delivered_counts();
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), hot_subscribers());
    let twice: Vec<_> = counts.iter().filter(|(_, count)| **count != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(stack.gateway.posts().len(), SUBSCRIBERS);
    let body = String::from_utf8(stack.gateway.posts()[0].body.clone()).unwrap();
    assert_eq!(
        body,
        r#"{"type":"Entity Updated","entityId":"hot","message":"price changed"}"#
    );
    // Three invocations at 1,000 posts/s each at most.
    let rate = stack.gateway.post_rate();
    assert!(rate <= 3_300.0, "{rate:.0} posts/s over a budget of 3 x 1,000");
}

/// The chunk queue of the split tests, apart from the events queue.
const CHUNK_QUEUE: &str = "wsstack-test-chunks";

/// Settings as the stack sets them: chunks to their own queue, `invocations` of it at once,
/// `budget` divided as `plan` divides it (5% for what events invocations post themselves).
fn divided(budget: f64, invocations: usize, chunk_size: usize) -> PushSettings {
    PushSettings {
        chunk_size: Some(chunk_size),
        chunk_queue_arn: Some(format!("arn:aws:sqs:us-east-1:123456789012:{CHUNK_QUEUE}")),
        chunk_invocations: invocations,
        posts_per_second: Some(budget * 0.95 / invocations as f64),
        direct_posts_per_second: Some(budget * 0.05 / invocations as f64),
        ..PushSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_invocation_posts_only_a_few_itself_and_hands_the_rest_to_the_chunk_queue() {
    let stack = Stack::start().await;
    let events = setup(&stack, 30).await;
    let chunk_queue = Queue::create_named(&stack, CHUNK_QUEUE, 30).await;
    // 2,000 posts/s over 5 invocations: 20 posts/s each for direct posts, so at most 5 of them
    // (a quarter of a second); chunks at 380 posts/s, at least 38 connections each.
    let app = stack.app(None, divided(2_000.0, 5, CHUNK)).await;
    let mut fixtures = subscribers(20_000, 3, "three");
    fixtures.extend(subscribers(20_003, 2, "two"));
    fixtures.extend(subscribers(20_005, 3, "three-more"));
    stack.put_items(fixtures).await;
    let bodies = [
        eventbridge_body("three", "a"),
        eventbridge_body("hot", "b"),
        eventbridge_body("two", "c"),
        eventbridge_body("three-more", "d"),
    ];
    let records: Vec<(String, &str)> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| (format!("event-{n}"), body.as_str()))
        .collect();
    let records: Vec<(&str, &str)> = records.iter().map(|(id, body)| (id.as_str(), *body)).collect();
    let response = push::push(&app, sqs_event(&records), Instant::now() + Duration::from_secs(30)).await;
    let returned = std::time::Instant::now();
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    // Kept in order while they fit in 5 posts: "three" and "two"; "three-more" would make 8.
    let posted: BTreeSet<String> = stack.gateway.delivered_counts().into_keys().collect();
    assert_eq!(posted, (20_000..20_005).map(connection_id).collect::<BTreeSet<_>>());
    // At the direct rate (20/s), not a chunk's (380/s): four intervals of 50 ms between the first
    // and the last, and the invocation held one more past the last before it answered (bounds
    // lowered by what a post's own way to the stand-in may take: the first opens the connection).
    let times: Vec<std::time::Instant> = stack.gateway.posts().iter().map(|post| post.at).collect();
    let (first, last) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    assert!(last - first >= Duration::from_millis(150), "{:?}", last - first);
    assert!(returned - last >= Duration::from_millis(25), "{:?}", returned - last);

    // The others are chunks on the chunk queue, none on the events queue.
    let queued = chunk_queue.chunks().await;
    assert!(
        events.receive(10).await.is_empty(),
        "something went back to the events queue"
    );
    let mut sizes: Vec<usize> = queued.iter().map(|c| c.connection_ids.len()).collect();
    sizes.sort();
    // "three-more" in one chunk of its 3; the 5,000 of "hot" in 20 chunks of CHUNK (5,000 / 5
    // invocations is 1,000, more than a chunk may hold).
    let mut expected = vec![CHUNK; SUBSCRIBERS / CHUNK];
    expected.insert(0, 3);
    assert_eq!(sizes, expected);
    let recipients: BTreeSet<String> = queued.iter().flat_map(|c| c.connection_ids.clone()).collect();
    let mut all = hot_subscribers();
    all.extend((20_005..20_008).map(connection_id));
    assert_eq!(recipients, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_a_thousand_is_divided_among_every_invocation_of_the_chunk_queue() {
    let stack = Stack::start().await;
    let events = Queue::create(&stack, 30).await;
    let chunk_queue = Queue::create_named(&stack, CHUNK_QUEUE, 30).await;
    stack.put_items(subscribers(0, 1_000, "hot")).await;
    let app = stack.app(None, divided(2_000.0, 5, 1_000)).await;
    events.send_event().await;
    assert_eq!(events.invoke(&app, 10, Duration::from_secs(30)).await, 1);
    assert!(stack.gateway.posts().is_empty(), "the splitting invocation posted");
    // One chunk of 200 per invocation: five invocations post it at once.
    let sizes: Vec<usize> = chunk_queue
        .chunks()
        .await
        .iter()
        .map(|c| c.connection_ids.len())
        .collect();
    assert_eq!(sizes, vec![200; 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_event_goes_to_the_chunk_queue_while_its_later_pages_are_read() {
    // Five invocations of the chunk queue: from 1,250 subscribers on (a round), every chunk is a
    // full CHUNK whatever the final count. The handler reads a round per page: the first five
    // chunks go with the first page.
    handed_on_while_read(None, SUBSCRIBERS / (5 * CHUNK)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_cut_chunks_still_make_full_chunks() {
    // Query pages of 300 (the stack's `query_page_limit`), not a multiple of a chunk: the first
    // chunks go with the fifth page (1,500 read), and what a page leaves over waits for the next.
    handed_on_while_read(Some(300), SUBSCRIBERS.div_ceil(300)).await;
}

/// One event to the 5,000 subscribers through an invocation of the events queue reading them in
/// pages (`query_page_limit`, else the handler's own): its chunk messages were sent before its
/// last Query was, and hold every subscriber once, in full chunks.
async fn handed_on_while_read(query_page_limit: Option<i32>, pages: usize) {
    let stack = Stack::start().await;
    let events = setup(&stack, 30).await;
    let chunk_queue = Queue::create_named(&stack, CHUNK_QUEUE, 30).await;
    let app = stack.app(query_page_limit, divided(2_000.0, 5, CHUNK)).await;
    stack.proxy.clear();
    events.send_event().await;
    assert_eq!(events.invoke(&app, 10, Duration::from_secs(30)).await, 1);
    assert!(stack.gateway.posts().is_empty(), "the splitting invocation posted");

    let calls = stack.proxy.calls();
    let started = |service: &str, operation: &str| -> Vec<Duration> {
        calls
            .iter()
            .filter(|call| call.service == service && call.operation == operation)
            .map(|call| call.started)
            .collect()
    };
    let queries = started("dynamodb", "Query");
    let sends = started("sqs", "SendMessageBatch");
    assert!(queries.len() >= pages, "{} pages, {pages} expected", queries.len());
    // Chunks were on their way before the last page was asked for.
    let first_send = *sends.iter().min().expect("chunks were sent");
    let last_query = *queries.iter().max().unwrap();
    assert!(
        first_send < last_query,
        "the first SendMessageBatch began at {first_send:?}, the last Query at {last_query:?}"
    );

    // All the same: every subscriber in exactly one chunk, every chunk full.
    let queued = chunk_queue.chunks().await;
    let sizes: Vec<usize> = queued.iter().map(|c| c.connection_ids.len()).collect();
    assert_eq!(sizes, vec![CHUNK; SUBSCRIBERS / CHUNK]);
    let recipients: Vec<String> = queued.iter().flat_map(|c| c.connection_ids.clone()).collect();
    assert_eq!(recipients.len(), SUBSCRIBERS);
    assert_eq!(recipients.into_iter().collect::<BTreeSet<_>>(), hot_subscribers());
}

/// How the one chunk's first invocation ends before its answer.
enum Death {
    /// The process is killed: no answer, the message comes back after its visibility timeout.
    Killed,
    /// The invocation's deadline comes mid-chunk: the record is answered as failed.
    Deadline,
}

/// Splits the event, lets one invocation start a chunk and end as `death` mid-way, then drains the
/// queue; checks that everyone got the event and that every duplicate is of that one chunk.
async fn one_chunk_dies(death: Death) {
    let stack = Stack::start().await;
    // A visibility timeout well past the drain's 20 s invocations: at 15 s (with 12 s invocations)
    // a chunk that a loaded machine took longer than that to post and delete came back while
    // still being posted, and its subscribers got it twice, outside the cut chunk.
    let queue = setup(&stack, 30).await;
    // 100 posts/s: a chunk takes 2.5 s, well within the visibility timeout.
    let app = stack.app(None, chunked(100.0)).await;
    queue.send_event().await;
    assert_eq!(queue.invoke(&app, 10, Duration::from_secs(30)).await, 1);

    let messages = queue.receive(1).await;
    let (message_id, _, body) = messages.into_iter().next().expect("a chunk is queued");
    let chunk = chunks::parse(Some(&body)).expect("a chunk message").unwrap();
    assert_eq!(chunk.connection_ids.len(), CHUNK);
    match death {
        Death::Killed => {
            let event = sqs_event(&[(&message_id, &body)]);
            let invocation = push::push(&app, event, Instant::now() + Duration::from_secs(30));
            let a_hundred_posts = async {
                while stack.gateway.delivered().len() < 100 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            // Dropping the invocation mid-way is the process dying: no answer, nothing deleted.
            tokio::select! {
                _ = invocation => panic!("the chunk finished before it could be cut"),
                _ = a_hundred_posts => {}
            }
        }
        Death::Deadline => {
            // 1.5 s less the 0.5 s answer margin: at most 100 of the 250 posts.
            let event = sqs_event(&[(&message_id, &body)]);
            let response = push::push(&app, event, Instant::now() + Duration::from_millis(1_500)).await;
            assert_eq!(response.batch_item_failures.len(), 1, "the cut chunk is handed back");
        }
    }
    let cut = stack.gateway.delivered().len();
    assert!(cut > 0 && cut < CHUNK, "{cut} posts before the chunk was cut");

    // Batches of one: the chunk comes back alone once its visibility timeout ends. Two invocations
    // at a time: on a starved machine four at 100 posts/s each asked more than the process could
    // post, and one of them reached its deadline mid-chunk.
    queue.drain(&app, &stack.gateway, 2, 1, Duration::from_secs(20)).await;
    let counts = stack.gateway.delivered_counts();
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), hot_subscribers());

    // Every cut chunk may cost its subscribers one duplicate each: the one cut here, and any a
    // drain invocation handed back because its own deadline came first (none, unless the machine
    // is starved; such a chunk is an invocation dying mid-chunk as much as the first).
    let mut cuts: BTreeMap<String, usize> = chunk.connection_ids.iter().map(|id| (id.clone(), 1)).collect();
    let drain_cuts = queue.handed_back.lock().unwrap().clone();
    for body in &drain_cuts {
        let cut_again = chunks::parse(Some(body)).expect("a chunk message").unwrap();
        for id in cut_again.connection_ids {
            *cuts.entry(id).or_default() += 1;
        }
    }
    let duplicated: BTreeSet<String> = counts
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        duplicated.iter().any(|id| chunk.connection_ids.contains(id)),
        "the cut chunk was retried, its first posts again"
    );
    let outside: Vec<_> = duplicated.iter().filter(|id| !cuts.contains_key(*id)).take(5).collect();
    assert!(outside.is_empty(), "duplicates outside every cut chunk: {outside:?}");
    let beyond: Vec<_> = counts
        .iter()
        .filter(|(id, count)| **count > 1 + cuts.get(*id).copied().unwrap_or(0))
        .take(5)
        .collect();
    assert!(beyond.is_empty(), "more deliveries than cuts allow: {beyond:?}");
    println!(
        "{} of the {CHUNK} connections of the cut chunk got the event twice; {} chunks cut by the \
         drain's own deadline; nobody outside a cut chunk got it twice",
        duplicated
            .iter()
            .filter(|id| chunk.connection_ids.contains(*id))
            .count(),
        drain_cuts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_killed_mid_chunk_costs_duplicates_only_within_that_chunk() {
    one_chunk_dies(Death::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_mid_chunk_costs_duplicates_only_within_that_chunk() {
    one_chunk_dies(Death::Deadline).await;
}

/// Posts per second reached against the budget, chunked as the stack chunks (an events queue, a
/// chunk queue taken one chunk per invocation by five invocations at once), with the stand-in
/// answering in 10 ms:
/// `cargo test -p wsstack-handlers --release --test push_chunks -- --ignored --nocapture post_rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn post_rate_against_the_budget() {
    const INVOCATIONS: usize = 5;
    println!("| subscribers | budget (posts/s) | chunks | split -> last post | posts/s reached | share of budget |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for budget in [2_000.0, 10_000.0] {
        for subscribers in [1_000, 5_000, 15_000] {
            let stack = Stack::start().await;
            let events = Queue::create(&stack, 60).await;
            let chunk_queue = Queue::create_named(&stack, CHUNK_QUEUE, 60).await;
            stack.put_items(common::subscribers(0, subscribers, "hot")).await;
            stack.gateway.set_latency(Duration::from_millis(10));
            let app = stack.app(None, divided(budget, INVOCATIONS, 1_000)).await;
            events.send_event().await;
            let started = std::time::Instant::now();
            events.invoke(&app, 10, Duration::from_secs(60)).await;
            let chunks = chunk_queue.depth().await;
            chunk_queue
                .drain_to(
                    &app,
                    &stack.gateway,
                    subscribers,
                    INVOCATIONS,
                    1,
                    Duration::from_secs(60),
                )
                .await;
            let last_post = stack.gateway.posts().iter().map(|post| post.at).max().unwrap();
            let elapsed = last_post - started;
            let posts = stack.gateway.posts().len();
            let rate = stack.gateway.post_rate();
            println!(
                "| {subscribers} | {budget:.0} | {chunks} | {:.2} s | {rate:.0} | {:.0}% |",
                elapsed.as_secs_f64(),
                rate / budget * 100.0
            );
            assert_eq!(posts, subscribers);
            assert!(rate <= budget, "{rate:.0} posts/s over a budget of {budget:.0}");
        }
    }
}
