//! At-least-once delivery with idempotent effects survives a SIGKILL mid-stream.

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Result;
use sixfold_tests::ledger::{Behaviour, LedgerEntry};
use sixfold_tests::{create_topics, unique, wait_for};

use crate::harness::{Harness, expected_balances};

const EVENTS: usize = 300;

fn spawn_processor(h: &Harness, name: &str, topic: &str, instance: &str) -> Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_ledger-processor"))
        .env("LEDGER_NAME", name)
        .env("LEDGER_TOPIC", topic)
        .env("LEDGER_REGISTRY_URL", &h.registry.url)
        .env("LEDGER_PREFIX", h.keys.namespace())
        .env("LEDGER_SQLITE", &h.sqlite_path)
        // Records of different keys run side by side: at 20 ms a record, the first instance
        // would be done before it could be killed mid-stream.
        .env("LEDGER_DELAY_MS", "300")
        .env("LEDGER_INSTANCE", instance)
        .env("RUST_LOG", "warn")
        .spawn()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_processor_resumes_and_applies_every_event_exactly_once() -> Result<()> {
    let h = Harness::new().await?;
    let topic = unique("ledger-kill");
    create_topics(&[(&topic, 4)]).await?;
    let entries: Vec<LedgerEntry> = (0..EVENTS)
        .map(|i| LedgerEntry::new(&format!("acct-{}", i % 10), i as i64 + 1, Behaviour::Apply))
        .collect();
    h.produce(&topic, &entries).await?;

    let name = unique("ledger-proc");
    let mut first = spawn_processor(&h, &name, &topic, "first")?;
    wait_for(
        "a third of the events",
        Duration::from_secs(120),
        || async { h.applied_count().await >= EVENTS / 3 },
    )
    .await?;
    first.kill()?; // SIGKILL: no commit, no goodbye.
    first.wait()?;
    let at_kill = h.applied_count().await;
    assert!(
        at_kill < EVENTS,
        "the processor finished before it was killed"
    );

    // The restart comes after the killed member's session has run out (10 s): when a new
    // member joined while tansu still counted the dead one, the new member was sometimes
    // assigned no partition at all and no later rebalance came (docs/broker.md). Apache Kafka
    // would hand the partitions over either way.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut second = spawn_processor(&h, &name, &topic, "second")?;
    let finished = wait_for("every event", Duration::from_secs(180), || async {
        h.applied_count().await >= EVENTS
    })
    .await;
    second.kill()?;
    second.wait()?;
    finished?;

    assert_eq!(h.applied_count().await, EVENTS);
    assert_eq!(h.balances().await?, expected_balances(&entries));
    assert_eq!(
        h.store.kv().count(h.keys.namespace()).await? as usize,
        EVENTS
    );
    let calls = h.calls().await?;
    assert!(calls >= EVENTS as u64, "{calls} calls for {EVENTS} events");
    println!(
        "killed after {at_kill} applied; {} redelivered effects were absorbed",
        calls - EVENTS as u64
    );
    Ok(())
}
