//! `topics apply` creates what is missing, grows partitions, and changes nothing the second time.

use std::collections::BTreeMap;

use anyhow::Result;
use sixfold_runtime::topics::{Action, TopicSpec, apply};
use sixfold_tests::{kafka, unique};

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions,
        replication: 1,
        config: BTreeMap::from([
            ("cleanup.policy".into(), "delete".into()),
            ("retention.ms".into(), "3600000".into()),
        ]),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_is_idempotent_and_grows_partitions() -> Result<()> {
    let (a, b) = (unique("apply-a"), unique("apply-b"));
    let specs = vec![spec(&a, 2), spec(&b, 1)];

    let first = apply(&kafka(), &specs).await?;
    assert_eq!(
        first,
        vec![(a.clone(), Action::Created), (b.clone(), Action::Created)]
    );

    let second = apply(&kafka(), &specs).await?;
    assert_eq!(
        second,
        vec![
            (a.clone(), Action::Unchanged),
            (b.clone(), Action::Unchanged)
        ]
    );

    // Kafka adds partitions; tansu 0.6 has no CreatePartitions and says so (docs/broker.md).
    let grown = apply(&kafka(), &[spec(&a, 4), spec(&b, 1)]).await?;
    let actual = match &grown[0].1 {
        Action::PartitionsAdded { from: 2, to: 4 } => 4,
        Action::CannotAddPartitions {
            actual: 2,
            wanted: 4,
        } => 2,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(grown[1], (b, Action::Unchanged));
    let after = apply(&kafka(), &[spec(&a, 1)]).await?;
    assert_eq!(after, vec![(a, Action::MorePartitions { actual })]);
    Ok(())
}

/// The checked-in catalog applies cleanly and a second run changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn checked_in_catalog_applies_twice() -> Result<()> {
    // At run time, not `env!`: a test binary from the shared target dir may come from a clone
    // elsewhere.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest).join("..");
    let catalog = sixfold_runtime::topics::Catalog::load(&root.join("topics.yaml"))?;
    let specs = catalog.specs();
    apply(&kafka(), &specs).await?;
    let again = apply(&kafka(), &specs).await?;
    assert!(
        again.iter().all(|(_, a)| *a == Action::Unchanged),
        "{again:?}"
    );
    assert!(again.iter().any(|(n, _)| n == "url.created"));
    assert!(again.iter().any(|(n, _)| n == "urls.dlq"));
    Ok(())
}
