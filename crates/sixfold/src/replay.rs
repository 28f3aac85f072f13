//! `sixfold replay`: rebuild a processor's views by reading its input topics again.
//!
//! 1. The processor's consumer group must have no live members (stop the processor first): a
//!    running instance would commit its own positions over the reset. A broker that cannot
//!    describe the group (the local one fails to, docs/broker.md) makes the replay refuse
//!    unless `--force` says every instance is stopped.
//! 2. With `--from`, the group's committed offsets on every input partition are set to where
//!    the replay starts: `earliest` (each partition's first record), an RFC 3339 time (the
//!    first record at or after it, found with `offsets_for_times`), or explicit
//!    `topic:partition=offset` pairs. Without `--from` the replay resumes from the offsets the
//!    group has committed: an interrupted replay is continued by running it again.
//! 3. The replay ends at each partition's end as it is when the replay starts or, with `--to`,
//!    before the first record at or after an RFC 3339 time, or at explicit
//!    `topic:partition=offset` pairs (exclusive).
//! 4. The processor runs in this process in its own group (retry and DLQ topics as usual, but
//!    none of the side loops — no crawler fetches, no notification scheduler) until it has
//!    read every record and committed every input partition up to those end offsets; records
//!    past a `--to` end are left unread (the runtime's `stop_at`). It prints progress
//!    (records/s and records left) every second. Then the processor can be started again; it
//!    continues from there — after a `--to` replay, with the records past the stop point.
//!
//! Processors are idempotent, so replaying into existing views changes nothing; replaying into
//! wiped views (store namespaces and Redis keys removed) rebuilds them. Two kinds of processor
//! replay differently, because handling their input again would act on the outside world or
//! give other views ([`crate::replay_topics`]):
//! - chat reads `chat.membership`, `chat.sent` and `chat.receipt` in timestamp order across
//!   the three (the runtime's aligned mode; its views depend on that order) with a processor
//!   that delivers nothing, in a group of its own (`chat.replay`): what the live processor
//!   has not handled yet stays its to deliver;
//! - the notification processors (`notify` and its channel workers) rebuild their views from
//!   `notify.status`, their decision log ([`sixfold_notify::restore`]), in a group of their
//!   own (`<name>.replay`): their input's positions are left alone, and nothing is decided or
//!   sent again. The processor's own group must still have no live members.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sixfold_runtime::shutdown::CancellationToken;

use sixfold_notify::template::Channel;
use sixfold_notify::workers::ChannelWorker;

use crate::settings::Settings;
use crate::{BROKER_TIMEOUT, Clients, Systems};

/// Where a replay starts (`--from`) or stops (`--to`, where `earliest` means nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// Each partition's first record.
    Earliest,
    /// The first record at or after this time (ms since the epoch).
    Time(i64),
    /// Explicit offsets by topic and partition; partitions not named start at their first
    /// record (for `--to`: end at their end).
    Offsets(BTreeMap<(String, i32), i64>),
}

impl std::str::FromStr for From {
    type Err = anyhow::Error;

    /// `earliest`, an RFC 3339 time (`2026-11-27T10:00:00Z`), or `topic:partition=offset`
    /// pairs separated by commas.
    fn from_str(text: &str) -> Result<Self> {
        if text == "earliest" {
            return Ok(From::Earliest);
        }
        if let Ok(time) = text.parse::<jiff::Timestamp>() {
            return Ok(From::Time(time.as_millisecond()));
        }
        let mut offsets = BTreeMap::new();
        for pair in text.split(',') {
            let parsed = pair.rsplit_once('=').and_then(|(place, offset)| {
                let (topic, partition) = place.rsplit_once(':')?;
                Some((topic, partition.parse().ok()?, offset.parse().ok()?))
            });
            let Some((topic, partition, offset)) = parsed else {
                bail!(
                    "--from {text:?}: expected `earliest`, an RFC 3339 time such as \
                     2026-11-27T10:00:00Z, or topic:partition=offset pairs separated by commas"
                );
            };
            if offset < 0 {
                bail!("--from {pair:?}: offsets are 0 or more");
            }
            offsets.insert((topic.to_owned(), partition), offset);
        }
        Ok(From::Offsets(offsets))
    }
}

/// One input partition: where the replay starts and where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset replayed (the group's committed offset when resuming).
    pub start: i64,
    /// Where the replay ends (exclusive): the partition's end when the replay began, or the
    /// `--to` offset.
    pub end: i64,
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The input partitions.
    pub spans: Vec<Span>,
    /// Records replayed.
    pub records: i64,
    /// How long it took.
    pub elapsed: Duration,
}

/// A consumer in `group` that never subscribes: it reads watermarks, times and committed
/// offsets, and commits new ones.
fn group_client(settings: &Settings, group: &str) -> Result<BaseConsumer> {
    let mut config = settings.kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    config.create().context("create the replay's group client")
}

/// Refuses when `group` has members (a processor instance is running), or when the broker
/// cannot say and `force` (the operator has stopped every instance) is not given.
fn ensure_stopped(client: &BaseConsumer, group: &str, force: bool) -> Result<()> {
    let groups = match client.fetch_group_list(Some(group), BROKER_TIMEOUT) {
        Ok(groups) => groups,
        Err(error) if force => {
            tracing::warn!(%error, group, "group not described; replaying anyway (--force)");
            return Ok(());
        }
        Err(error) => bail!(
            "cannot tell whether group {group} has live members: the broker did not describe \
             it ({error}); stop every `{group}` processor and pass --force"
        ),
    };
    let members: Vec<String> = groups
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members().iter().map(|m| m.client_host().to_owned()))
        .collect();
    if !members.is_empty() {
        bail!(
            "group {group} has {} live members ({}); stop every `{group}` processor first",
            members.len(),
            members.join(", ")
        );
    }
    Ok(())
}

/// The partitions of `topics`, in order.
fn partitions(client: &BaseConsumer, topics: &[String]) -> Result<Vec<(String, i32)>> {
    let metadata = client
        .fetch_metadata(None, BROKER_TIMEOUT)
        .context("broker metadata")?;
    let mut found = Vec::new();
    for topic in topics {
        let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
            bail!("input topic {topic} does not exist; run `sixfold topics apply`");
        };
        found.extend(meta.partitions().iter().map(|p| (topic.clone(), p.id())));
    }
    Ok(found)
}

/// The first offset of `topic`/`partition` at or after `time_ms`, within `low..=high`.
fn offset_at(
    settings: &Settings,
    client: &BaseConsumer,
    topic: &str,
    partition: i32,
    time_ms: i64,
    (low, high): (i64, i64),
) -> Result<i64> {
    if low >= high {
        return Ok(high);
    }
    let mut query = TopicPartitionList::new();
    query.add_partition_offset(topic, partition, Offset::Offset(time_ms))?;
    let answer = client
        .offsets_for_times(query, BROKER_TIMEOUT)
        .with_context(|| format!("offsets_for_times on {topic}/{partition}"))?;
    let found = match answer.find_partition(topic, partition).map(|p| p.offset()) {
        Some(Offset::Offset(offset)) => offset,
        _ => high,
    };
    // The local broker answers 0 instead of "none" for a time after the last record
    // (docs/broker.md): believe 0 only if the last record is not older than the time.
    if found == 0 && last_timestamp(settings, topic, partition, high)? < time_ms {
        return Ok(high);
    }
    Ok(found.clamp(low, high))
}

/// The timestamp of the record before `high` (the last one).
fn last_timestamp(settings: &Settings, topic: &str, partition: i32, high: i64) -> Result<i64> {
    let reader = group_client(
        settings,
        &format!("sixfold-replay-probe-{}", std::process::id()),
    )?;
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(topic, partition, Offset::Offset(high - 1))?;
    reader.assign(&at)?;
    let started = Instant::now();
    while started.elapsed() < BROKER_TIMEOUT {
        if let Some(message) = reader.poll(Duration::from_millis(200)) {
            return Ok(message?.timestamp().to_millis().unwrap_or(i64::MAX));
        }
    }
    bail!("could not read the last record of {topic}/{partition}")
}

/// The start and end of every input partition, committing the start offsets when `from` is
/// given; `to` moves the ends back.
fn plan(
    settings: &Settings,
    client: &BaseConsumer,
    topics: &[String],
    from: Option<&From>,
    to: Option<&From>,
) -> Result<Vec<Span>> {
    if to == Some(&From::Earliest) {
        bail!("--to earliest would replay nothing: give an RFC 3339 time or offsets");
    }
    let mut spans = Vec::new();
    let mut committed = TopicPartitionList::new();
    for (topic, partition) in partitions(client, topics)? {
        committed.add_partition(&topic, partition);
    }
    let committed = client
        .committed_offsets(committed, BROKER_TIMEOUT)
        .context("the group's committed offsets")?;
    for element in committed.elements() {
        let (topic, partition) = (element.topic().to_owned(), element.partition());
        let (low, high) = client
            .fetch_watermarks(&topic, partition, BROKER_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}/{partition}"))?;
        let position = |bound: &From, default: i64| -> Result<i64> {
            Ok(match bound {
                From::Earliest => low,
                From::Time(time_ms) => {
                    offset_at(settings, client, &topic, partition, *time_ms, (low, high))?
                }
                From::Offsets(offsets) => offsets
                    .get(&(topic.clone(), partition))
                    .copied()
                    .unwrap_or(default)
                    .clamp(low, high),
            })
        };
        let start = match from {
            None => match element.offset() {
                Offset::Offset(offset) => offset.clamp(low, high),
                _ => low,
            },
            Some(bound) => position(bound, low)?,
        };
        let end = match to {
            None => high,
            Some(bound) => position(bound, high)?.max(start),
        };
        spans.push(Span {
            topic,
            partition,
            start,
            end,
        });
    }
    for (flag, bound) in [("--from", from), ("--to", to)] {
        if let Some(From::Offsets(offsets)) = bound {
            for (topic, partition) in offsets.keys() {
                if !spans
                    .iter()
                    .any(|s| &s.topic == topic && s.partition == *partition)
                {
                    bail!("{flag} names {topic}:{partition}, which is not an input partition");
                }
            }
        }
    }
    if from.is_some() {
        let mut reset = TopicPartitionList::new();
        for span in &spans {
            reset.add_partition_offset(&span.topic, span.partition, Offset::Offset(span.start))?;
        }
        client
            .commit(&reset, CommitMode::Sync)
            .context("commit the replay's start offsets")?;
    }
    Ok(spans)
}

/// Records left: end minus the group's committed offset, per span, summed. A partition whose
/// records up to its end were deleted meanwhile (retention: its low watermark reached the end)
/// has none left, since the consumer will never commit an offset there.
fn left(client: &BaseConsumer, spans: &[Span]) -> Result<i64> {
    let mut query = TopicPartitionList::new();
    for span in spans {
        query.add_partition(&span.topic, span.partition);
    }
    let committed = client.committed_offsets(query, BROKER_TIMEOUT)?;
    let mut gone = Vec::new();
    for span in spans {
        let (low, _) = client.fetch_watermarks(&span.topic, span.partition, BROKER_TIMEOUT)?;
        gone.push(low >= span.end);
    }
    Ok(spans
        .iter()
        .zip(gone)
        .filter(|(_, gone)| !gone)
        .map(|(span, _)| {
            let at = committed
                .find_partition(&span.topic, span.partition)
                .and_then(|p| match p.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                })
                .unwrap_or(span.start);
            (span.end - at).max(0)
        })
        .sum())
}

/// Follows a replay's processor: what its group has committed, and what it has read.
struct Progress<'a> {
    client: &'a BaseConsumer,
    processor: &'a str,
    topics: &'a [String],
    clients: &'a Clients,
}

impl Progress<'_> {
    /// Records of the input topics the processor has read in this process.
    fn consumed(&self) -> u64 {
        self.topics
            .iter()
            .map(|topic| {
                self.clients
                    .metrics
                    .consumed
                    .with_label_values(&[self.processor, topic.as_str()])
                    .get()
            })
            .sum()
    }

    /// Waits until the group has committed every span up to its end and the processor has
    /// read the spans' records (beyond the `consumed_before` it had read already), printing
    /// progress every second. Fails if the processor stops first; `resume` says how to go on
    /// after an interruption.
    async fn until_done(
        &self,
        spans: &[Span],
        consumed_before: u64,
        running: &mut std::pin::Pin<&mut impl std::future::Future<Output = Result<()>>>,
        stop: &CancellationToken,
        resume: &str,
    ) -> Result<()> {
        let processor = self.processor;
        let total: i64 = spans.iter().map(|s| s.end - s.start).sum();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last = (Instant::now(), total);
        loop {
            tokio::select! {
                result = running.as_mut() => {
                    result?;
                    if stop.is_cancelled() {
                        bail!(
                            "interrupted; run `sixfold replay --processor {processor}` again \
                             (without {resume}) to resume"
                        );
                    }
                    bail!("the processor stopped before the replay was done");
                }
                _ = tick.tick() => {}
            }
            let remaining = match left(self.client, spans) {
                Ok(remaining) => remaining,
                Err(error) => {
                    // One slow broker answer does not end a long replay: try again next second.
                    tracing::warn!(%error, "replay progress not read");
                    continue;
                }
            };
            let rate = (last.1 - remaining) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), remaining);
            // Committed offsets alone could say "done" when the reset did not take (a broker
            // that kept the group's old positions): the processor must also have read records.
            // (Not as many as the offsets span: a compacted topic has gaps.)
            let consumed = self.consumed().saturating_sub(consumed_before);
            let done = total - remaining;
            eprintln!(
                "replay {processor}: {done}/{total} records ({:.0}%), {rate:.0} records/s, {remaining} left",
                done as f64 * 100.0 / total.max(1) as f64
            );
            if remaining == 0 && (consumed > 0 || total == 0) {
                return Ok(());
            }
        }
    }
}

/// Replays `processor` from `from` (or from its committed offsets) to `to` (or the end of its
/// input topics as they are now), printing progress to stderr every second; `stop`
/// interrupts it (resumable).
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    settings: &Settings,
    clients: &Clients,
    systems: &Systems,
    processor: &str,
    from: Option<From>,
    to: Option<From>,
    force: bool,
    stop: &CancellationToken,
) -> Result<ReplayReport> {
    crate::check_processor(processor)?;
    let group = crate::replay_group(processor);
    if to.is_some() && group != processor {
        bail!(
            "--to does not go with {processor}: its replay runs in group {group}, apart from the \
             live processor, which would not continue from the stop point"
        );
    }
    ensure_stopped(&group_client(settings, processor)?, processor, force)?;
    let client = group_client(settings, &group)?;
    let topics = crate::replay_topics(systems, processor)?;
    let spans = plan(settings, &client, &topics, from.as_ref(), to.as_ref())?;
    let total: i64 = spans.iter().map(|s| s.end - s.start).sum();
    let started = Instant::now();
    if total == 0 {
        return Ok(ReplayReport {
            spans,
            records: 0,
            elapsed: started.elapsed(),
        });
    }

    // Ctrl-C stops the processor gracefully: its offsets are committed, and running the
    // replay again without --from resumes there.
    let shutdown = stop.child_token();
    // The records past each end stay unread: with --to they are the resume's, without they
    // came after the replay started and are the live processor's.
    let stop_at = spans
        .iter()
        .map(|s| ((s.topic.clone(), s.partition), s.end))
        .collect();
    let options = crate::RunOptions {
        stop_at,
        replay: true,
        group: (group != processor).then(|| group.clone()),
        ..crate::RunOptions::default()
    };
    let progress = Progress {
        client: &client,
        processor,
        topics: &topics,
        clients,
    };
    let read_before = progress.consumed();
    let running = crate::run_processor_with(
        settings,
        clients,
        systems,
        processor,
        options,
        shutdown.clone(),
    );
    tokio::pin!(running);
    progress
        .until_done(
            &spans,
            read_before,
            &mut running,
            stop,
            "--from, with the same --to",
        )
        .await?;
    shutdown.cancel();
    running.await?;
    Ok(ReplayReport {
        spans,
        records: total,
        elapsed: started.elapsed(),
    })
}

/// The consumer groups that must have no members before a rebuild of `processor` swaps its
/// views: its own, and for the notification service its channel workers'.
fn live_groups(processor: &str) -> Vec<String> {
    let mut groups = vec![processor.to_owned()];
    if processor == sixfold_notify::PROCESSOR {
        groups.extend([Channel::Push, Channel::Email, Channel::Sms].map(ChannelWorker::name));
    }
    groups
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// The namespace the views were in.
    pub old_namespace: String,
    /// The namespace of the rebuilt views, now in use.
    pub new_namespace: String,
    /// The consumer group that built them.
    pub group: String,
    /// The state to keep when deleting the old views ([`crate::views::state_to_keep`]).
    pub keep: Option<String>,
    /// Records replayed, before and after the live processor stopped.
    pub records: i64,
    /// How long it took.
    pub elapsed: Duration,
}

/// `sixfold replay --rebuild`: builds `processor`'s views afresh under a new namespace in a
/// consumer group of its own while the live processor keeps serving the old ones; once caught
/// up, waits until every live instance is stopped (`force`: the operator stopped them before
/// starting the rebuild, for a broker that cannot describe groups), catches up with the last
/// records, points the processor's views at the new namespace ([`crate::views`]) and hands the
/// rebuild group's offsets to the processor's group. A rebuild has no retry tiers: a
/// transient failure is retried in place, so no record is skipped. Processes started
/// afterwards use the new views; the old ones are left for the operator to delete.
pub async fn rebuild(
    settings: &Settings,
    processor: &str,
    from: Option<From>,
    force: bool,
    stop: &CancellationToken,
) -> Result<RebuildReport> {
    crate::check_processor(processor)?;
    if !crate::views::REBUILDABLE.contains(&processor) {
        bail!(
            "{processor} cannot be rebuilt beside its views; rebuildable: {}",
            crate::views::REBUILDABLE.join(", ")
        );
    }
    let started = Instant::now();
    let probe = Clients::connect(settings, sixfold_runtime::metrics::Metrics::new()).await?;
    let live = crate::views::active_settings(settings, probe.store.as_ref()).await?;
    drop(probe);
    let mut fresh = live.clone();
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S").to_string();
    // State that is not a view keeps its namespace (the code allocator's).
    crate::views::keep_state(&mut fresh, processor);
    let namespace = crate::views::namespace_mut(&mut fresh, processor)
        .context("a rebuildable processor has a namespace")?;
    let old_namespace = namespace.clone();
    let configured = crate::views::namespace_mut(&mut settings.clone(), processor)
        .map(|n| n.clone())
        .unwrap_or_default();
    let new_namespace = format!("{configured}-r{stamp}");
    *namespace = new_namespace.clone();
    let group = format!("{processor}.rebuild-{stamp}");

    let clients = Clients::connect(&fresh, sixfold_runtime::metrics::Metrics::new()).await?;
    let shutdown = stop.child_token();
    let systems = Systems::new(&fresh, &clients, shutdown.clone())?;
    let topics = crate::replay_topics(&systems, processor)?;
    let client = group_client(&fresh, &group)?;
    let first = plan(
        &fresh,
        &client,
        &topics,
        Some(from.as_ref().unwrap_or(&From::Earliest)),
        None,
    )?;
    // No retry tiers: their topics are the live processor's, whose retry groups would apply
    // the rebuild's retried records to the old views. A transient failure is retried in
    // place; a permanent one (an invalid event) goes to the DLQ, as it did the first time.
    let options = crate::RunOptions {
        group: Some(group.clone()),
        without_retries: true,
        replay: true,
        ..crate::RunOptions::default()
    };
    let progress = Progress {
        client: &client,
        processor,
        topics: &topics,
        clients: &clients,
    };
    let running = crate::run_processor_with(
        &fresh,
        &clients,
        &systems,
        processor,
        options,
        shutdown.clone(),
    );
    tokio::pin!(running);
    let resume = "--rebuild: a rebuild starts over; its partial views stay under their namespace";
    progress
        .until_done(&first, 0, &mut running, stop, resume)
        .await?;

    // Caught up with the start: the live instances must stop before the hand-over (for the
    // notification service, its workers too: they write sent markers into its views).
    let live_client = group_client(&fresh, processor)?;
    let live_groups = live_groups(processor);
    let mut told = false;
    loop {
        let stopped = live_groups
            .iter()
            .try_for_each(|live| ensure_stopped(&group_client(&fresh, live)?, live, force));
        match stopped {
            Ok(()) => break,
            Err(error) if error.to_string().contains("live members") => {
                if !told {
                    eprintln!(
                        "rebuild {processor}: caught up under {new_namespace}; stop every \
                         `{processor}` instance to swap ({error})"
                    );
                    told = true;
                }
                tokio::select! {
                    result = running.as_mut() => {
                        result?;
                        bail!("the rebuild stopped while waiting for the live instances");
                    }
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
    // The records the live instances took in meanwhile.
    let last = plan(&fresh, &client, &topics, None, None)?;
    progress
        .until_done(&last, 0, &mut running, stop, resume)
        .await?;
    shutdown.cancel();
    running.await?;

    // Hand-over: the views first, then the processor's group continues where the rebuild
    // stopped. A crash in between re-applies records to the new views (idempotent) rather
    // than leaving the old views without them.
    crate::views::set_pointer(
        clients.store.as_ref(),
        processor,
        &crate::views::Pointer {
            configured,
            active: new_namespace.clone(),
        },
    )
    .await?;
    // A processor that replays its own input continues where the rebuild stopped. Chat's
    // rebuild delivered nothing and the notification service's read its status log: the live
    // group keeps its positions and handles what it has not yet (idempotently, on the new
    // views).
    if crate::replay_group(processor) == processor {
        let mut handover = TopicPartitionList::new();
        for span in &last {
            handover.add_partition_offset(&span.topic, span.partition, Offset::Offset(span.end))?;
        }
        live_client
            .commit(&handover, CommitMode::Sync)
            .with_context(|| format!("hand the rebuild's offsets to group {processor}"))?;
    }
    let records = first.iter().chain(&last).map(|s| s.end - s.start).sum();
    Ok(RebuildReport {
        keep: crate::views::state_to_keep(&fresh, processor),
        old_namespace,
        new_namespace,
        group,
        records,
        elapsed: started.elapsed(),
    })
}
