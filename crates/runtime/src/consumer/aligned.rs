//! Reading several input topics in timestamp order ([`ProcessorConfig::aligned`]), for a replay
//! whose views depend on the order of events across topics (chat: a conversation's creation
//! before its messages, a message before the receipts that cover it).
//!
//! The input partitions are grouped into tasks as Kafka Streams groups them: when every topic
//! has the same number of partitions (co-partitioned: keyed alike, so a key's events of every
//! topic share a partition number), one task per partition number; otherwise one task for all.
//! Within a task the record handled next is the buffered head with the smallest timestamp
//! (ties: the topic named first, then the lower offset), and nothing is handled while a
//! partition of the task that has records left before its end has none buffered. A replay knows
//! where every partition ends, so it waits for the fetch rather than guessing how long to wait
//! (Kafka Streams' `max.task.idle.ms` is that guess, for live input). Tasks run side by side,
//! each one record at a time.
//!
//! With `stop_at`, a partition ends there: later records are not read, offsets are stored as
//! records are handled and a partition's end once every record before it is handled, and the
//! run then commits and waits for shutdown. Without, the run follows its topics: the ends are
//! the partitions' ends when the run starts, moved to their high watermarks whenever a record
//! past an end arrives or none came for a moment (a rebuild catching up with the live
//! processor's input), so new records too wait for the older ones of the other partitions.
//!
//! Known limit: a partition whose last offsets before its end hold no record (compaction,
//! transaction markers) is taken as done only when the consumer's position passes the end;
//! librdkafka's position is the last record's offset + 1, so such a trailing gap can hold its
//! task back. Sixfold's aligned topics (chat's) are neither compacted nor transactional.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::lag::sample_lag;
use super::{ConsumerError, Driver, GroupConsumer, Interrupted, Lane, MAX_BATCH, commit};
use crate::processor::Processor;

/// A partition with this many records buffered is paused until it drops below
/// [`RESUME_BELOW`]: one topic far ahead in time must not fill memory while the others catch up.
const MAX_BUFFERED: usize = 2_000;
const RESUME_BELOW: usize = 500;

/// How long the loop waits for a record before looking at positions again.
const IDLE: Duration = Duration::from_millis(200);

/// Broker round trips while planning.
const PLAN_TIMEOUT: Duration = Duration::from_secs(10);

/// A topic and partition.
type Place = (String, i32);

/// What handling one task's records came to: the next offset reached per partition and, if it
/// stopped early, the offset where and why.
type Handled = (Vec<(Place, i64)>, Option<(i64, Interrupted)>);

/// One input partition of an aligned run.
struct Partition {
    /// Index of its topic in the configuration (the tie-break between equal timestamps).
    order: usize,
    /// Where it ends (exclusive).
    end: i64,
    /// The next offset expected from the broker.
    next: i64,
    /// Records received and not yet handed to their task.
    buffer: VecDeque<OwnedMessage>,
    /// Whether fetching is paused.
    paused: bool,
    /// The offset stored last (what a commit would record).
    stored: i64,
}

impl Partition {
    /// Every record before the end has been received.
    fn exhausted(&self) -> bool {
        self.next >= self.end
    }
}

/// The merge key of a record: timestamp, then topic order, then offset.
fn merge_key(message: &OwnedMessage, order: usize) -> (i64, usize, i64) {
    let time = message.timestamp().to_millis().unwrap_or(i64::MIN);
    (time, order, message.offset())
}

/// Takes, per task, the records that may be handled now, in merged order.
fn release(
    partitions: &mut HashMap<Place, Partition>,
    tasks: &[Vec<Place>],
) -> Vec<Vec<OwnedMessage>> {
    let mut work = Vec::new();
    for places in tasks {
        let mut out = Vec::new();
        loop {
            let mut best: Option<((i64, usize, i64), &Place)> = None;
            let mut blocked = false;
            for place in places {
                let partition = &partitions[place];
                match partition.buffer.front() {
                    None if !partition.exhausted() => {
                        blocked = true;
                        break;
                    }
                    None => {}
                    Some(head) => {
                        let key = merge_key(head, partition.order);
                        if best.is_none_or(|(best, _)| key < best) {
                            best = Some((key, place));
                        }
                    }
                }
            }
            let Some((_, place)) = best.filter(|_| !blocked) else {
                break;
            };
            let place = place.clone();
            if let Some(record) = partitions
                .get_mut(&place)
                .and_then(|p| p.buffer.pop_front())
            {
                out.push(record);
            }
        }
        if !out.is_empty() {
            work.push(out);
        }
    }
    work
}

/// The tasks of `places`: one per partition number when every topic has the same number of
/// partitions, else one for all.
fn tasks_of(places: &[Place], topics: &[String]) -> Vec<Vec<Place>> {
    let count = |topic: &String| places.iter().filter(|(t, _)| t == topic).count();
    let counts: Vec<usize> = topics.iter().map(count).collect();
    if counts.windows(2).all(|w| w[0] == w[1]) {
        let mut numbers: Vec<i32> = places.iter().map(|(_, p)| *p).collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|n| places.iter().filter(|(_, p)| *p == n).cloned().collect())
            .collect()
    } else {
        vec![places.to_vec()]
    }
}

impl<P: Processor> Driver<P> {
    /// Runs the processor over its input topics in timestamp order until every partition has
    /// reached its end, then waits for shutdown.
    pub(super) async fn run_aligned(self) -> Result<(), ConsumerError> {
        let lane = Lane {
            group: self
                .config
                .group
                .clone()
                .unwrap_or_else(|| self.config.name.clone()),
            topics: self.config.topics.clone(),
            is_retry: false,
        };
        let kafka_error = |source| ConsumerError::Kafka {
            group: lane.group.clone(),
            source,
        };
        let consumer = Arc::new(self.unsubscribed_consumer(&lane)?);
        let planned = {
            let (consumer, topics, stop_at) = (
                consumer.clone(),
                lane.topics.clone(),
                self.config.stop_at.clone(),
            );
            tokio::task::spawn_blocking(move || plan(&consumer, &topics, &stop_at)).await?
        };
        let (mut partitions, tasks) = planned.map_err(kafka_error)?;
        let mut assignment = TopicPartitionList::new();
        for ((topic, number), partition) in &partitions {
            assignment
                .add_partition_offset(topic, *number, Offset::Offset(partition.next))
                .map_err(kafka_error)?;
        }
        consumer.assign(&assignment).map_err(kafka_error)?;
        let lag = tokio::spawn(sample_lag(
            consumer.clone(),
            self.config.name.clone(),
            self.context.metrics.clone(),
            self.shutdown.clone(),
        ));
        tracing::info!(group = %lane.group, topics = %lane.topics.join(","), tasks = tasks.len(), "aligned consumer started");
        let outcome = self
            .aligned_loop(&consumer, &mut partitions, &tasks, &lane.group)
            .await;
        commit(consumer.as_ref(), &lane.group);
        lag.abort();
        match outcome {
            Ok(true) => {
                tracing::info!(group = %lane.group, "aligned consumer reached every end");
                self.shutdown.cancelled().await;
                Ok(())
            }
            Ok(false) => Ok(()),
            Err((offset, source)) => Err(ConsumerError::HandOffRefused {
                group: lane.group.clone(),
                offset,
                source: Box::new(source),
            }),
        }
    }

    /// Receives, merges and handles records; true when every partition reached its end, false
    /// on shutdown.
    async fn aligned_loop(
        &self,
        consumer: &Arc<GroupConsumer>,
        partitions: &mut HashMap<Place, Partition>,
        tasks: &[Vec<Place>],
        group: &str,
    ) -> Result<bool, (i64, crate::producer::ProduceError)> {
        loop {
            let following = self.config.stop_at.is_empty();
            if !following
                && partitions
                    .values()
                    .all(|p| p.exhausted() && p.buffer.is_empty())
            {
                store_ends(consumer, partitions, group);
                return Ok(true);
            }
            let first = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(false),
                message = consumer.recv() => Some(message),
                _ = tokio::time::sleep(IDLE) => None,
            };
            let mut received = Vec::new();
            match first {
                Some(Ok(message)) => received.push(message.detach()),
                Some(Err(error)) => tracing::warn!(%error, %group, "consume error"),
                None => {
                    skip_gaps(consumer, partitions);
                    if following {
                        refresh_ends(consumer, partitions).await;
                    }
                }
            }
            while !received.is_empty() && received.len() < MAX_BATCH {
                match consumer.recv().now_or_never() {
                    Some(Ok(message)) => received.push(message.detach()),
                    Some(Err(error)) => {
                        tracing::warn!(%error, %group, "consume error");
                        break;
                    }
                    None => break,
                }
            }
            let mut stale = false;
            for message in received {
                let place = (message.topic().to_owned(), message.partition());
                let Some(partition) = partitions.get_mut(&place) else {
                    continue;
                };
                if message.offset() < partition.next {
                    continue;
                }
                if message.offset() >= partition.end && following {
                    // New records: the other partitions may have some too, older ones.
                    partition.end = message.offset() + 1;
                    stale = true;
                }
                if message.offset() >= partition.end {
                    partition.next = partition.end;
                } else {
                    partition.next = message.offset() + 1;
                    partition.buffer.push_back(message);
                }
            }
            if stale {
                refresh_ends(consumer, partitions).await;
            }
            flow_control(consumer, partitions, group, !following);

            let work = release(partitions, tasks);
            let mut running = Vec::new();
            for records in &work {
                running.push(self.handle_merged(records));
            }
            let handled: Vec<Handled> = futures::stream::iter(running)
                .buffer_unordered(tasks.len().max(1))
                .collect()
                .await;
            let mut positions = TopicPartitionList::new();
            let mut interrupted = None;
            for (done, why) in handled {
                for ((topic, number), next) in done {
                    if let Some(partition) = partitions.get_mut(&(topic.clone(), number))
                        && next > partition.stored
                    {
                        partition.stored = next;
                        let _ =
                            positions.add_partition_offset(&topic, number, Offset::Offset(next));
                    }
                }
                interrupted = interrupted.or(why);
            }
            if positions.count() > 0
                && let Err(error) = consumer.store_offsets(&positions)
            {
                tracing::warn!(%error, %group, "offsets not stored");
            }
            match interrupted {
                None => {}
                Some((_, Interrupted::Shutdown)) => return Ok(false),
                Some((offset, Interrupted::HandOffRefused(source))) => {
                    return Err((offset, source));
                }
            }
        }
    }

    /// Handles one task's records in order.
    async fn handle_merged(&self, records: &[OwnedMessage]) -> Handled {
        let mut done: Vec<(Place, i64)> = Vec::new();
        for message in records {
            if let Err(why) = self.handle(message, false).await {
                return (done, Some((message.offset(), why)));
            }
            let place = (message.topic().to_owned(), message.partition());
            match done.iter_mut().find(|(p, _)| *p == place) {
                Some((_, next)) => *next = message.offset() + 1,
                None => done.push((place, message.offset() + 1)),
            }
        }
        (done, None)
    }
}

/// The input partitions with their starts (the group's committed offsets, else the first
/// record) and ends, and the tasks they form.
#[allow(clippy::type_complexity)]
fn plan(
    consumer: &GroupConsumer,
    topics: &[String],
    stop_at: &std::collections::BTreeMap<Place, i64>,
) -> Result<(HashMap<Place, Partition>, Vec<Vec<Place>>), rdkafka::error::KafkaError> {
    let metadata = consumer.fetch_metadata(None, PLAN_TIMEOUT)?;
    let mut places = Vec::new();
    for topic in topics {
        if let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) {
            places.extend(meta.partitions().iter().map(|p| (topic.clone(), p.id())));
        }
    }
    let mut query = TopicPartitionList::new();
    for (topic, number) in &places {
        query.add_partition(topic, *number);
    }
    let committed = consumer.committed_offsets(query, PLAN_TIMEOUT)?;
    let tasks = tasks_of(&places, topics);
    let mut partitions = HashMap::new();
    for members in &tasks {
        for place in members {
            let (topic, number) = place;
            let (low, high) = consumer.fetch_watermarks(topic, *number, PLAN_TIMEOUT)?;
            let start = match committed.find_partition(topic, *number).map(|p| p.offset()) {
                Some(Offset::Offset(offset)) => offset.clamp(low, high),
                _ => low,
            };
            let end = stop_at.get(place).copied().unwrap_or(high).max(start);
            let order = topics.iter().position(|t| t == topic).unwrap_or(0);
            partitions.insert(
                place.clone(),
                Partition {
                    order,
                    end,
                    next: start,
                    buffer: VecDeque::new(),
                    paused: false,
                    stored: start,
                },
            );
        }
    }
    Ok((partitions, tasks))
}

/// Pauses partitions that hold [`MAX_BUFFERED`] records or (with fixed ends) are exhausted,
/// and resumes those that drained below [`RESUME_BELOW`].
fn flow_control(
    consumer: &GroupConsumer,
    partitions: &mut HashMap<Place, Partition>,
    group: &str,
    fixed_ends: bool,
) {
    let (mut pause, mut resume) = (TopicPartitionList::new(), TopicPartitionList::new());
    for ((topic, number), partition) in partitions.iter_mut() {
        let done = fixed_ends && partition.exhausted();
        let full = partition.buffer.len() >= MAX_BUFFERED;
        if !partition.paused && (done || full) {
            partition.paused = true;
            pause.add_partition(topic, *number);
        } else if partition.paused && !done && partition.buffer.len() < RESUME_BELOW {
            partition.paused = false;
            resume.add_partition(topic, *number);
        }
    }
    for (list, what) in [(pause, "paused"), (resume, "resumed")] {
        if list.count() > 0
            && let Err(error) = if what == "paused" {
                consumer.pause(&list)
            } else {
                consumer.resume(&list)
            }
        {
            tracing::warn!(%error, %group, "partitions not {what}");
        }
    }
}

/// Marks partitions whose consumer position passed their end without a record there (the
/// offsets before the end do not exist: compaction, transaction markers) as exhausted.
fn skip_gaps(consumer: &GroupConsumer, partitions: &mut HashMap<Place, Partition>) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for element in positions.elements() {
        let place = (element.topic().to_owned(), element.partition());
        if let (Some(partition), Offset::Offset(position)) =
            (partitions.get_mut(&place), element.offset())
            && partition.buffer.is_empty()
            && position >= partition.end
        {
            partition.next = partition.end;
        }
    }
}

/// Moves every partition's end to its high watermark (a run that follows its topics).
async fn refresh_ends(consumer: &Arc<GroupConsumer>, partitions: &mut HashMap<Place, Partition>) {
    let places: Vec<Place> = partitions.keys().cloned().collect();
    let reader = consumer.clone();
    let highs = tokio::task::spawn_blocking(move || {
        places
            .into_iter()
            .filter_map(|(topic, number)| {
                let (_, high) = reader.fetch_watermarks(&topic, number, PLAN_TIMEOUT).ok()?;
                Some(((topic, number), high))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (place, high) in highs {
        if let Some(partition) = partitions.get_mut(&place) {
            partition.end = partition.end.max(high);
        }
    }
}

/// Stores every partition's end: all records before it are handled, and the group's position
/// must arrive there even where the last offsets do not exist.
fn store_ends(consumer: &GroupConsumer, partitions: &mut HashMap<Place, Partition>, group: &str) {
    let mut ends = TopicPartitionList::new();
    for ((topic, number), partition) in partitions.iter_mut() {
        if partition.end > partition.stored {
            partition.stored = partition.end;
            let _ = ends.add_partition_offset(topic, *number, Offset::Offset(partition.end));
        }
    }
    if ends.count() > 0
        && let Err(error) = consumer.store_offsets(&ends)
    {
        tracing::warn!(%error, %group, "end offsets not stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;

    fn record(topic: &str, partition: i32, offset: i64, time: i64) -> OwnedMessage {
        OwnedMessage::new(
            None,
            None,
            topic.to_owned(),
            Timestamp::CreateTime(time),
            partition,
            offset,
            None,
        )
    }

    fn partition(order: usize, end: i64, records: Vec<OwnedMessage>) -> Partition {
        let next = records.last().map_or(0, |r| r.offset() + 1);
        Partition {
            order,
            end,
            next,
            buffer: records.into(),
            paused: false,
            stored: 0,
        }
    }

    fn places(work: &[Vec<OwnedMessage>]) -> Vec<Vec<(String, i64)>> {
        work.iter()
            .map(|records| {
                records
                    .iter()
                    .map(|r| (r.topic().to_owned(), r.offset()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn co_partitioned_topics_form_one_task_per_partition_number() {
        let topics = vec!["a".to_owned(), "b".to_owned()];
        let both: Vec<Place> = [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
            .iter()
            .map(|(t, p)| (t.to_string(), *p))
            .collect();
        let tasks = tasks_of(&both, &topics);
        assert_eq!(tasks.len(), 2);
        assert!(tasks[0].iter().all(|(_, p)| *p == 0));
        let uneven: Vec<Place> = both[..3].to_vec();
        assert_eq!(tasks_of(&uneven, &topics).len(), 1);
    }

    #[test]
    fn records_come_out_in_timestamp_order_across_topics() {
        let tasks = vec![vec![("a".to_owned(), 0), ("b".to_owned(), 0)]];
        let mut partitions = HashMap::new();
        partitions.insert(
            ("a".to_owned(), 0),
            partition(
                0,
                3,
                vec![
                    record("a", 0, 0, 10),
                    record("a", 0, 1, 30),
                    record("a", 0, 2, 50),
                ],
            ),
        );
        partitions.insert(
            ("b".to_owned(), 0),
            partition(1, 2, vec![record("b", 0, 0, 10), record("b", 0, 1, 40)]),
        );
        let work = release(&mut partitions, &tasks);
        assert_eq!(
            places(&work),
            vec![vec![
                ("a".to_owned(), 0),
                ("b".to_owned(), 0),
                ("a".to_owned(), 1),
                ("b".to_owned(), 1),
                ("a".to_owned(), 2),
            ]]
        );
    }

    #[test]
    fn a_partition_with_records_still_to_come_holds_its_task_back() {
        let tasks = vec![vec![("a".to_owned(), 0), ("b".to_owned(), 0)]];
        let mut partitions = HashMap::new();
        partitions.insert(
            ("a".to_owned(), 0),
            partition(0, 2, vec![record("a", 0, 0, 10), record("a", 0, 1, 30)]),
        );
        // b has one record buffered and one more before its end, not received yet.
        partitions.insert(
            ("b".to_owned(), 0),
            partition(1, 2, vec![record("b", 0, 0, 20)]),
        );
        let work = release(&mut partitions, &tasks);
        assert_eq!(
            places(&work),
            vec![vec![("a".to_owned(), 0), ("b".to_owned(), 0)]]
        );
        // a's second record waits: b's next one may be older.
        assert_eq!(partitions[&("a".to_owned(), 0)].buffer.len(), 1);
        let b = partitions.get_mut(&("b".to_owned(), 0)).unwrap();
        b.buffer.push_back(record("b", 0, 1, 25));
        b.next = 2;
        let work = release(&mut partitions, &tasks);
        assert_eq!(
            places(&work),
            vec![vec![("b".to_owned(), 1), ("a".to_owned(), 1)]]
        );
    }
}
