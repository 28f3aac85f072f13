//! Checks of the catalog document itself and of the checked-in `topics.yaml` and schemas.

use std::path::PathBuf;

use super::*;

const SAMPLE: &str = r#"
defaults: {partitions: 4, replication: 1, retention: 7d}
retry_delays: [1s, 10s, 60s]
processors:
  - name: urls
  - name: chat
    retry_delays: [2s]
topics:
  - {name: url.created, key: short_code, schema: url.created.avsc, consumers: [urls], retention: forever}
  - {name: chat.sent, key: conversation_id, schema: chat.sent.avsc, consumers: [chat], partitions: 8}
  - {name: users, key: user_id, schema: users.avsc, cleanup: compact}
"#;

#[test]
fn derives_processor_configs_and_failure_topics() {
    let catalog = Catalog::parse(SAMPLE).unwrap();
    let urls = catalog.processor("urls").unwrap();
    assert_eq!(urls.topics, vec!["url.created"]);
    assert_eq!(urls.retry_delays.len(), 3);
    let chat = catalog.processor("chat").unwrap();
    assert_eq!(chat.retry_delays, vec![Duration::from_secs(2)]);
    assert!(catalog.processor("nobody").is_none());

    let specs = catalog.specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "url.created",
            "chat.sent",
            "users",
            "urls.retry.1",
            "urls.retry.2",
            "urls.retry.3",
            "urls.dlq",
            "chat.retry.1",
            "chat.dlq"
        ]
    );
    assert_eq!(specs[0].config["retention.ms"], "-1");
    assert_eq!(specs[1].partitions, 8);
    assert_eq!(specs[2].config["cleanup.policy"], "compact");
    assert!(!specs[2].config.contains_key("retention.ms"));
}

#[test]
fn rejects_unknown_consumers_duplicates_and_keys() {
    let unknown = SAMPLE.replace("consumers: [chat]", "consumers: [nobody]");
    assert!(
        Catalog::parse(&unknown)
            .unwrap_err()
            .to_string()
            .contains("nobody")
    );
    let twice = format!(
        "{SAMPLE}  - {{name: users, key: user_id, schema: users.avsc, cleanup: compact}}\n"
    );
    assert!(
        Catalog::parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
    let typo = SAMPLE.replace("key: short_code", "kee: short_code");
    assert!(Catalog::parse(&typo).is_err());
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every topic in the checked-in catalog has a schema that parses as Avro, starts with
/// `event_id` and `occurred_at`, and every schema file belongs to a topic.
#[test]
fn checked_in_catalog_and_schemas_agree() {
    let root = repo_root();
    let catalog = Catalog::load(&root.join("topics.yaml")).unwrap();
    let schema_dir = root.join("schemas/avro");
    let mut expected = std::collections::BTreeSet::new();
    for topic in &catalog.topics {
        let path = schema_dir.join(&topic.schema);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: schema {}: {e}", topic.name, path.display()));
        let schema = apache_avro::Schema::parse_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let apache_avro::Schema::Record(record) = &schema else {
            panic!("{} is not a record", path.display());
        };
        let first: Vec<&str> = record
            .fields
            .iter()
            .take(2)
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(first, ["event_id", "occurred_at"], "{}", path.display());
        expected.insert(topic.schema.clone());
    }
    for entry in std::fs::read_dir(&schema_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".avsc") {
            assert!(
                expected.contains(&name),
                "{name} belongs to no topic in topics.yaml"
            );
        }
    }
}

/// Each schema can read data written with every earlier version of itself kept under
/// `schemas/avro/history/<topic>.v<N>.avsc` (BACKWARD compatibility, as the registry enforces).
#[test]
fn schemas_are_backward_compatible_with_their_history() {
    use apache_avro::schema_compatibility::SchemaCompatibility;
    let root = repo_root();
    let catalog = Catalog::load(&root.join("topics.yaml")).unwrap();
    let history = root.join("schemas/avro/history");
    for topic in &catalog.topics {
        let current = apache_avro::Schema::parse_str(
            &std::fs::read_to_string(root.join("schemas/avro").join(&topic.schema)).unwrap(),
        )
        .unwrap();
        let Ok(entries) = std::fs::read_dir(&history) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with(&format!("{}.v", topic.name)) {
                continue;
            }
            let old =
                apache_avro::Schema::parse_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            SchemaCompatibility::can_read(&old, &current).unwrap_or_else(|e| {
                panic!("{}: cannot read data written with {name}: {e}", topic.name)
            });
        }
    }
}
