//! Two instances of a processor split a 4-partition topic; when one stops, the other takes its
//! partitions over and nothing is lost.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::ledger::{Behaviour, LedgerEntry};
use sixfold_tests::{create_topics, unique, wait_for};

use crate::harness::{Harness, expected_balances};

/// Partitions each instance applied events from, for the given events.
fn partitions_by_instance(
    applied_by: &HashMap<String, String>,
    events: &[LedgerEntry],
) -> HashMap<String, BTreeSet<String>> {
    let mut result: HashMap<String, BTreeSet<String>> = HashMap::new();
    for entry in events {
        let by = &applied_by[&entry.event_id];
        let mut parts = by.split(':');
        let (instance, partition) = (parts.next().unwrap(), parts.next().unwrap());
        result
            .entry(instance.into())
            .or_default()
            .insert(partition.into());
    }
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_split_partitions_and_survive_one_leaving() -> Result<()> {
    let h = Harness::new().await?;
    let topic = unique("ledger-group");
    create_topics(&[(&topic, 4)]).await?;
    let name = unique("grouped");
    let config = ProcessorConfig {
        name,
        topics: vec![topic.clone()],
        retry_delays: vec![],
        ..ProcessorConfig::default()
    };
    let start = |instance: &str| {
        let token = CancellationToken::new();
        let task = tokio::spawn(run_processor(
            Arc::new(h.processor(instance)),
            config.clone(),
            h.context.clone(),
            token.clone(),
        ));
        (token, task)
    };
    let (stop_a, task_a) = start("a");
    let (stop_b, task_b) = start("b");

    // Keep producing small batches until both instances hold partitions: the group settles
    // while records flow, as in production.
    let mut first_wave = Vec::new();
    let mut round = 0;
    wait_for(
        "both instances to apply events",
        Duration::from_secs(120),
        || {
            round += 1;
            let batch: Vec<LedgerEntry> = (0..32)
                .map(|i| LedgerEntry::new(&format!("acct-{i}"), round, Behaviour::Apply))
                .collect();
            first_wave.extend(batch.clone());
            let h = &h;
            let topic = topic.clone();
            let wave = first_wave.clone();
            async move {
                if h.produce(&topic, &batch).await.is_err() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Ok(applied_by) = h.applied_by().await else {
                    return false;
                };
                let applied: Vec<LedgerEntry> = wave
                    .into_iter()
                    .filter(|e| applied_by.contains_key(&e.event_id))
                    .collect();
                partitions_by_instance(&applied_by, &applied).len() == 2
            }
        },
    )
    .await?;
    wait_for("the first wave", Duration::from_secs(60), || async {
        h.applied_count().await >= first_wave.len()
    })
    .await?;
    let split = partitions_by_instance(&h.applied_by().await?, &first_wave);
    let all: BTreeSet<&String> = split.values().flatten().collect();
    assert_eq!(all.len(), 4, "every partition served: {split:?}");

    stop_b.cancel();
    task_b.await??;
    let second_wave: Vec<LedgerEntry> = (0..64)
        .map(|i| LedgerEntry::new(&format!("acct-{}", i % 32), 1000 + i, Behaviour::Apply))
        .collect();
    h.produce(&topic, &second_wave).await?;
    let total = first_wave.len() + second_wave.len();
    wait_for(
        "the second wave on the remaining instance",
        Duration::from_secs(120),
        || async { h.applied_count().await >= total },
    )
    .await?;
    let after = partitions_by_instance(&h.applied_by().await?, &second_wave);
    assert_eq!(after.keys().collect::<Vec<_>>(), vec!["a"], "{after:?}");
    assert_eq!(
        after["a"].len(),
        4,
        "a took every partition over: {after:?}"
    );

    stop_a.cancel();
    task_a.await??;
    let everything: Vec<LedgerEntry> = first_wave.into_iter().chain(second_wave).collect();
    assert_eq!(h.applied_count().await, total);
    assert_eq!(h.balances().await?, expected_balances(&everything));
    Ok(())
}
