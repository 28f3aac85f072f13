//! Checks of the catalog document itself and of the checked-in `topics.yaml` and schemas.

use std::path::{Path, PathBuf};

use super::*;

const SAMPLE: &str = r#"
defaults: {partitions: 4, replication: 1, retention: 7d}
retry_delays: [1s, 10s, 60s]
processors:
  - name: urls
  - name: chat
    retry_delays: [2s]
    fetch_wait: 10ms
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
    assert_eq!(chat.fetch_wait, Some(Duration::from_millis(10)));
    assert_eq!(urls.fetch_wait, None);
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
    // At run time, not `env!`: the cargo target dir is shared between clones (CI caches it),
    // and a test binary built in another clone would look in that clone's directory.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    PathBuf::from(manifest).join("../..")
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

/// Problems found checking each topic's schema against its history: the current schema must
/// read data written with every earlier version kept as `<history>/<topic>.v<N>.avsc`
/// (BACKWARD compatibility, as the registry enforces).
fn history_problems(catalog: &Catalog, schemas: &Path, history: &Path) -> Vec<String> {
    use apache_avro::schema_compatibility::SchemaCompatibility;
    let Ok(entries) = std::fs::read_dir(history) else {
        return Vec::new();
    };
    let old_versions: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    let mut problems = Vec::new();
    for topic in &catalog.topics {
        let text = std::fs::read_to_string(schemas.join(&topic.schema)).unwrap();
        let current = apache_avro::Schema::parse_str(&text).unwrap();
        let prefix = format!("{}.v", topic.name);
        for path in &old_versions {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with(&prefix) {
                continue;
            }
            let old =
                apache_avro::Schema::parse_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            if let Err(e) = SchemaCompatibility::can_read(&old, &current) {
                problems.push(format!(
                    "{}: cannot read data written with {name}: {e}",
                    topic.name
                ));
            }
        }
    }
    problems
}

#[test]
fn schemas_are_backward_compatible_with_their_history() {
    let root = repo_root();
    let catalog = Catalog::load(&root.join("topics.yaml")).unwrap();
    let problems = history_problems(
        &catalog,
        &root.join("schemas/avro"),
        &root.join("schemas/avro/history"),
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn history_check_catches_an_incompatible_change() {
    let dir = tempfile::tempdir().unwrap();
    let (schemas, history) = (dir.path().join("avro"), dir.path().join("history"));
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::create_dir_all(&history).unwrap();
    let record = |fields: &str| format!(r#"{{"type":"record","name":"E","fields":[{fields}]}}"#);
    let v1 = record(r#"{"name":"a","type":"string"}"#);
    let catalog = Catalog::parse(
        "defaults: {partitions: 1, replication: 1, retention: 1d}\nretry_delays: []\nprocessors: []\ntopics:\n  - {name: t, key: k, schema: t.avsc}\n",
    )
    .unwrap();
    std::fs::write(history.join("t.v1.avsc"), &v1).unwrap();

    // Adding a field with a default: old data stays readable.
    let compatible =
        record(r#"{"name":"a","type":"string"},{"name":"b","type":"long","default":0}"#);
    std::fs::write(schemas.join("t.avsc"), compatible).unwrap();
    assert!(history_problems(&catalog, &schemas, &history).is_empty());

    // Adding a field without a default: old data lacks it.
    let incompatible = record(r#"{"name":"a","type":"string"},{"name":"b","type":"long"}"#);
    std::fs::write(schemas.join("t.avsc"), incompatible).unwrap();
    let problems = history_problems(&catalog, &schemas, &history);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("t.v1.avsc"));
}
