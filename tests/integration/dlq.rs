//! `sixfold dlq`: dead letters listed by error class and decoded, re-driven to their input
//! topic once (however often the re-drive runs), and purged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use sixfold::Clients;
use sixfold::settings::Settings;
use sixfold_runtime::failure::{H_ERROR_CLASS, H_ORIGINAL_TOPIC, dlq_topic};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Outgoing;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::ledger::{Behaviour, LedgerEntry};
use sixfold_tests::{create_topics, kafka, redis_url, unique};

use crate::harness::{Harness, header, read_records};

const PATIENCE: Duration = Duration::from_secs(60);

/// Runs the ledger processor `name` on `input` until `dead` records are in its DLQ.
async fn run_until_dead_letters(h: &Harness, name: &str, input: &str, dead: usize) -> Result<()> {
    let shutdown = CancellationToken::new();
    let config = ProcessorConfig {
        name: name.to_owned(),
        topics: vec![input.to_owned()],
        retry_delays: vec![],
        ..ProcessorConfig::default()
    };
    let running = tokio::spawn(run_processor(
        Arc::new(h.processor("only")),
        config,
        h.context.clone(),
        shutdown.clone(),
    ));
    let found = read_records(&dlq_topic(name), dead, PATIENCE).await;
    shutdown.cancel();
    running.await??;
    ensure!(found?.len() == dead, "dead letters of {name}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_redriven_once_and_purged() -> Result<()> {
    let h = Harness::new().await?;
    let name = unique("dlq-tool");
    let input = unique("ledger-dlq");
    create_topics(&[(&input, 1), (&dlq_topic(&name), 2)]).await?;
    let rejected = [
        LedgerEntry::new("a", 1, Behaviour::Reject),
        LedgerEntry::new("b", 2, Behaviour::Reject),
    ];
    h.produce(&input, &rejected).await?;
    h.context
        .producer
        .send(Outgoing {
            topic: &input,
            key: Some(b"garbage-key"),
            payload: Some(b"not avro"),
            headers: &[],
        })
        .await?;
    h.produce(&input, &[LedgerEntry::new("c", 3, Behaviour::Apply)])
        .await?;
    run_until_dead_letters(&h, &name, &input, 3).await?;

    let mut settings = Settings {
        kafka: kafka(),
        ..Settings::default()
    };
    settings.registry.url = h.registry.url.clone();
    settings.redis.url = redis_url();
    settings.store.sqlite_path = h.sqlite_path.clone();
    let clients = Clients::connect(&settings, Metrics::new()).await?;

    let summary = sixfold::dlq::list(&settings, &clients, &name, 5).await?;
    ensure!(summary.total == 3, "{summary:?}");
    let classes: Vec<(&str, u64)> = summary
        .classes
        .iter()
        .map(|c| (c.error_class.as_str(), c.count))
        .collect();
    ensure!(classes == [("rejected", 2), ("decode", 1)], "{classes:?}");
    let example = &summary.classes[0].examples[0];
    ensure!(example.original_topic == input, "{example:?}");
    ensure!(
        example.value["behaviour"] == "REJECT",
        "decoded: {example:?}"
    );
    ensure!(summary.classes[1].examples[0].value["undecodable"].is_string());

    // A dry run sends nothing; a real one sends the rejected two back, once however often run.
    let dry = sixfold::dlq::redrive(&settings, &clients, &name, Some("rejected"), true).await?;
    ensure!(
        dry.matched == 2 && dry.redriven == 2 && dry.dry_run,
        "{dry:?}"
    );
    let first = sixfold::dlq::redrive(&settings, &clients, &name, Some("rejected"), false).await?;
    ensure!(
        first.redriven == 2 && first.already_redriven == 0,
        "{first:?}"
    );
    let again = sixfold::dlq::redrive(&settings, &clients, &name, None, false).await?;
    ensure!(
        again.matched == 3 && again.redriven == 1 && again.already_redriven == 2,
        "{again:?}"
    );
    // On the input topic: the four originals, then the three re-driven with their headers.
    let records = read_records(&input, 7, PATIENCE).await?;
    ensure!(records.len() == 7, "{} records on the input", records.len());
    let redriven: Vec<_> = records
        .iter()
        .filter(|r| header(r, sixfold::dlq::H_REDRIVEN_FROM).is_some())
        .collect();
    ensure!(redriven.len() == 3, "{} re-driven", redriven.len());
    for record in &redriven {
        ensure!(header(record, H_ORIGINAL_TOPIC).as_deref() == Some(input.as_str()));
        ensure!(header(record, H_ERROR_CLASS).is_some(), "headers kept");
    }
    let listed = sixfold::dlq::list(&settings, &clients, &name, 1).await?;
    ensure!(
        listed.classes.iter().all(|c| c.redriven == c.count),
        "{listed:?}"
    );

    // The processor takes them as new records: they fail again, as they would until fixed.
    run_until_dead_letters(&h, &name, &input, 6).await?;
    let purged = sixfold::dlq::purge(&settings, &clients, &name).await?;
    ensure!(purged == 6, "purged {purged}");
    let empty = sixfold::dlq::list(&settings, &clients, &name, 1).await?;
    ensure!(empty.total == 0 && empty.classes.is_empty(), "{empty:?}");
    let nothing = sixfold::dlq::redrive(&settings, &clients, &name, None, false).await?;
    ensure!(nothing.matched == 0, "{nothing:?}");
    Ok(())
}
