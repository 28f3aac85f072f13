//! Transient failures climb the retry tiers; permanent failures, exhausted retries and garbage
//! bytes land in the DLQ with the documented headers; the processor keeps going.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rdkafka::Message;
use sixfold_runtime::failure::{
    H_ATTEMPTS, H_DUE_MS, H_ERROR_CLASS, H_ERROR_MESSAGE, H_FIRST_FAILURE_MS, H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION, H_ORIGINAL_TOPIC, H_PROCESSOR, dlq_topic, retry_topic,
};
use sixfold_runtime::producer::Outgoing;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::ledger::{Behaviour, LedgerEntry};
use sixfold_tests::{create_topics, unique, wait_for};

use crate::harness::{Harness, header, read_records};

#[tokio::test(flavor = "multi_thread")]
async fn retries_then_dead_letters_with_headers() -> Result<()> {
    let h = Harness::new().await?;
    let name = unique("retrying");
    let input = unique("ledger-retry");
    let (retry1, retry2, dlq) = (
        retry_topic(&name, 1),
        retry_topic(&name, 2),
        dlq_topic(&name),
    );
    create_topics(&[(&input, 1), (&retry1, 1), (&retry2, 1), (&dlq, 1)]).await?;

    let applied = LedgerEntry::new("a", 1, Behaviour::Apply);
    let flaky = LedgerEntry::new("b", 2, Behaviour::FailTwice);
    let rejected = LedgerEntry::new("c", 3, Behaviour::Reject);
    let hopeless = LedgerEntry::new("d", 4, Behaviour::AlwaysTransient);
    let after_garbage = LedgerEntry::new("e", 5, Behaviour::Apply);
    h.produce(
        &input,
        &[
            applied.clone(),
            flaky.clone(),
            rejected.clone(),
            hopeless.clone(),
        ],
    )
    .await?;
    let garbage = b"definitely not avro";
    h.context
        .producer
        .send(Outgoing {
            topic: &input,
            key: Some(b"garbage-key"),
            payload: Some(garbage),
            headers: &[],
        })
        .await?;
    h.produce(&input, std::slice::from_ref(&after_garbage))
        .await?;

    let shutdown = CancellationToken::new();
    let config = ProcessorConfig {
        name: name.clone(),
        topics: vec![input.clone()],
        retry_delays: vec![Duration::from_millis(300), Duration::from_millis(600)],
        ..ProcessorConfig::default()
    };
    let running = tokio::spawn(run_processor(
        Arc::new(h.processor("only")),
        config,
        h.context.clone(),
        shutdown.clone(),
    ));

    wait_for(
        "applied, retried and post-garbage events",
        Duration::from_secs(120),
        || async {
            h.is_applied(&applied.event_id).await
                && h.is_applied(&flaky.event_id).await
                && h.is_applied(&after_garbage.event_id).await
        },
    )
    .await?;
    let applied_by = h.applied_by().await?;
    assert!(
        applied_by[&flaky.event_id].ends_with(":3"),
        "FAIL_TWICE applied on attempt 3, got {}",
        applied_by[&flaky.event_id]
    );

    let dead = read_records(&dlq, 3, Duration::from_secs(120)).await?;
    let lag_metric =
        format!(r#"sixfold_consumer_lag{{partition="0",processor="{name}",topic="{input}"}} 0"#);
    wait_for(
        "the lag gauge to reach 0",
        Duration::from_secs(60),
        || async { h.context.metrics.render().contains(&lag_metric) },
    )
    .await?;
    shutdown.cancel();
    running.await??;
    assert!(!h.is_applied(&rejected.event_id).await);
    assert!(!h.is_applied(&hopeless.event_id).await);

    let by_class = |class: &str| {
        dead.iter()
            .find(|m| header(m, H_ERROR_CLASS).as_deref() == Some(class))
            .unwrap_or_else(|| panic!("no DLQ record of class {class}"))
    };
    let rejected_record = by_class("rejected");
    assert_eq!(header(rejected_record, H_ATTEMPTS).as_deref(), Some("1"));
    assert_eq!(
        header(rejected_record, H_ORIGINAL_TOPIC).as_deref(),
        Some(input.as_str())
    );
    assert_eq!(
        header(rejected_record, H_ORIGINAL_PARTITION).as_deref(),
        Some("0")
    );
    assert_eq!(
        header(rejected_record, H_ORIGINAL_OFFSET).as_deref(),
        Some("2")
    );
    assert_eq!(
        header(rejected_record, H_PROCESSOR).as_deref(),
        Some(name.as_str())
    );
    assert!(
        header(rejected_record, H_ERROR_MESSAGE)
            .unwrap()
            .contains(&rejected.event_id)
    );
    assert!(
        header(rejected_record, H_FIRST_FAILURE_MS)
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    assert_eq!(rejected_record.key(), Some(b"c".as_slice()));

    let exhausted = by_class("flaky");
    assert_eq!(
        header(exhausted, H_ATTEMPTS).as_deref(),
        Some("3"),
        "1 try + 2 tiers"
    );
    assert_eq!(header(exhausted, H_ORIGINAL_OFFSET).as_deref(), Some("3"));
    assert_eq!(
        header(exhausted, H_ORIGINAL_TOPIC).as_deref(),
        Some(input.as_str())
    );
    assert!(
        header(exhausted, H_DUE_MS).is_none(),
        "a DLQ record is not due anywhere"
    );

    let undecodable = by_class("decode");
    assert_eq!(undecodable.payload(), Some(garbage.as_slice()));
    assert_eq!(undecodable.key(), Some(b"garbage-key".as_slice()));
    assert_eq!(header(undecodable, H_ORIGINAL_OFFSET).as_deref(), Some("4"));
    assert!(
        header(undecodable, H_ERROR_MESSAGE)
            .unwrap()
            .contains("magic byte")
    );

    let metrics = h.context.metrics.render();
    assert!(
        metrics.contains(&format!(
            r#"sixfold_dead_lettered_total{{error_class="decode",processor="{name}"}} 1"#
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"sixfold_retried_total{{processor="{name}",tier="2"}} 2"#
        )),
        "{metrics}"
    );
    Ok(())
}
