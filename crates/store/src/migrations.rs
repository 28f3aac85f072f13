//! The numbered schema migrations, one list for both adapters so their versions agree.
//!
//! A migration is a SQLite script (`crates/store/migrations/sqlite/NNN_name.sql`) and a CQL
//! script (`schemas/cql/NNN_name.cql`) describing the same logical tables. Each adapter
//! records applied versions in its `schema_migrations` table and applies the missing ones in
//! order when it connects. Migrations are append-only: never edit one that has shipped.

/// One schema change, in both dialects.
pub(crate) struct Migration {
    /// Version number, strictly increasing through [`MIGRATIONS`].
    pub version: u32,
    /// Short name, e.g. `kv`.
    pub name: &'static str,
    /// SQLite script, run as one batch inside a transaction.
    pub sqlite: &'static str,
    /// CQL script, split into statements by [`cql_statements`]; tables are unqualified (the
    /// session uses the configured keyspace).
    #[cfg_attr(not(feature = "scylla"), allow(dead_code))]
    pub cql: &'static str,
}

/// Every migration, oldest first. Later systems append theirs here.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "kv",
    sqlite: include_str!("../migrations/sqlite/001_kv.sql"),
    cql: include_str!("../../../schemas/cql/001_kv.cql"),
}];

/// The keyspace bootstrap script with `{keyspace}` and `{replication_factor}` placeholders.
#[cfg(feature = "scylla")]
pub(crate) const CQL_BOOTSTRAP: &str = include_str!("../../../schemas/cql/000_keyspace.cql");

/// Splits a CQL script into statements: drops whole-line `--` and `//` comments, splits on
/// `;` and drops empty pieces. Scripts must therefore not put `;` inside string literals.
#[cfg_attr(not(feature = "scylla"), allow(dead_code))]
pub(crate) fn cql_statements(script: &str) -> Vec<String> {
    let without_comments: String = script
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with("--") || line.starts_with("//"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<u32> = (1..=MIGRATIONS.len() as u32).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn cql_scripts_split_into_statements_without_comments() {
        let statements =
            cql_statements("-- a; comment\nCREATE TABLE a (x int);\n\n// b\n  DROP TABLE b ;\n");
        assert_eq!(statements, vec!["CREATE TABLE a (x int)", "DROP TABLE b"]);
        assert_eq!(cql_statements(MIGRATIONS[0].cql).len(), 1);
    }

    #[cfg(feature = "scylla")]
    #[test]
    fn bootstrap_creates_keyspace_then_migrations_table() {
        let statements = cql_statements(CQL_BOOTSTRAP);
        assert_eq!(statements.len(), 2);
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS {keyspace}"));
        assert!(statements[1].contains("{keyspace}.schema_migrations"));
    }
}
