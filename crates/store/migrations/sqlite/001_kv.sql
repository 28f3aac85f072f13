-- Migration 1: the namespaced key-value table (see `KvStore`).
-- The same logical table as schemas/cql/001_kv.cql.
--
-- An ordinary rowid table rather than WITHOUT ROWID: values go up to 1 MiB, and SQLite's own
-- guidance is that WITHOUT ROWID suits rows much smaller than a page. The primary key's
-- index keeps (namespace, key) ordered for `list`, with BINARY collation, i.e. UTF-8 byte
-- order, the same order as ScyllaDB's `text` clustering column.
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT;
