#!/usr/bin/env python3
"""Writes Strimzi KafkaTopic resources for every topic that topics.yaml implies.

    python3 scripts/strimzi_topics.py > deploy/k8s/kafka/topics.yaml

It mirrors `Catalog::specs` in crates/runtime/src/topics/mod.rs:

- each topic listed under `topics:` with its partitions (or defaults.partitions), its
  cleanup.policy, and retention.ms when the policy is `delete` (a humantime duration such as
  7d or 12h in milliseconds, `forever` as -1; a compacted topic has no retention.ms);
- for each processor, in catalog order, `<processor>.retry.1` .. `<processor>.retry.N` (one per
  retry delay, the processor's own `retry_delays` overriding the global list) with 7 days of
  retention, then `<processor>.dlq` with 30 days; both with defaults.partitions;
- and the schema registry's topic (`_schemas`: one partition, compacted), which the catalog
  does not list.

Production replicates every topic `--replicas` times (3); the catalog's `replication` is the
development value. Needs PyYAML.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# crates/runtime/src/topics/mod.rs: RETRY_RETENTION and DLQ_RETENTION.
RETRY_RETENTION_MS = 7 * 24 * 3600 * 1000
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000

# What humantime (the crate `topics.yaml` durations go through) accepts, in nanoseconds.
_NS = {
    **dict.fromkeys(("nanos", "nsec", "ns"), 1),
    **dict.fromkeys(("usec", "us", "µs"), 1_000),
    **dict.fromkeys(("millis", "msec", "ms"), 1_000_000),
    **dict.fromkeys(("seconds", "second", "secs", "sec", "s"), 1_000_000_000),
    **dict.fromkeys(("minutes", "minute", "mins", "min", "m"), 60 * 10**9),
    **dict.fromkeys(("hours", "hour", "hrs", "hr", "h"), 3600 * 10**9),
    **dict.fromkeys(("days", "day", "d"), 86_400 * 10**9),
    **dict.fromkeys(("weeks", "week", "w"), 7 * 86_400 * 10**9),
    **dict.fromkeys(("months", "month", "M"), 2_630_016 * 10**9),  # 30.44 days
    **dict.fromkeys(("years", "year", "y"), 31_557_600 * 10**9),  # 365.25 days
}
_PART = re.compile(r"\s*(\d+)\s*([A-Za-zµ]+)")
# Kubernetes object names: a DNS subdomain (lowercase alphanumerics, '-' and '.').
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# Plain words YAML 1.1 readers take for booleans or null.
_YAML_WORDS = {"y", "yes", "n", "no", "true", "false", "on", "off", "null"}


class CatalogError(Exception):
    """topics.yaml is malformed or inconsistent (what `sixfold topics apply` would refuse)."""


def duration_ms(text: str) -> int:
    """A humantime duration (`7d`, `12h`, `1h 30m`) in whole milliseconds."""
    if not isinstance(text, str) or not text.strip():
        raise CatalogError(f"duration {text!r}: expected text such as 7d or 12h")
    total, pos = 0, 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match or match.group(2) not in _NS:
            raise CatalogError(f"duration {text!r}: cannot read it at {text[pos:]!r}")
        total += int(match.group(1)) * _NS[match.group(2)]
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return total // 1_000_000


def retention_ms(value: str) -> int:
    """`retention.ms` of a topics.yaml retention: -1 for `forever`."""
    return -1 if value == "forever" else duration_ms(value)


@dataclass
class Topic:
    """A topic as it must exist on the broker."""

    name: str
    partitions: int
    config: dict[str, str | int]
    role: str  # topic | retry | dlq | schemas
    processor: str | None = None
    key: str | None = None
    consumers: list[str] = field(default_factory=list)


def _check_keys(where: str, entry: dict, allowed: set[str], required: set[str]) -> None:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = set(entry) - allowed
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    missing = required - set(entry)
    if missing:
        raise CatalogError(f"{where}: missing field(s) {', '.join(sorted(missing))}")


def load_catalog(path: Path) -> dict:
    """Reads and checks topics.yaml like `Catalog::parse` (unknown keys and consumers refused)."""
    catalog = yaml.safe_load(path.read_text(encoding="utf-8"))
    _check_keys("topics.yaml", catalog, {"defaults", "retry_delays", "processors", "topics"},
                {"defaults", "retry_delays", "processors", "topics"})
    _check_keys("defaults", catalog["defaults"], {"partitions", "replication", "retention"},
                {"partitions", "replication", "retention"})
    retention_ms(catalog["defaults"]["retention"])
    for delay in catalog["retry_delays"]:
        duration_ms(delay)
    names = []
    for p in catalog["processors"]:
        _check_keys("processors[]", p, {"name", "retry_delays", "fetch_wait"}, {"name"})
        for delay in p.get("retry_delays") or []:
            duration_ms(delay)
        if "fetch_wait" in p:
            duration_ms(p["fetch_wait"])
        names.append(p["name"])
    seen = set()
    for t in catalog["topics"]:
        _check_keys(f"topic {t.get('name', '?')}", t,
                    {"name", "key", "schema", "consumers", "partitions", "replication", "cleanup",
                     "retention", "doc"}, {"name", "key", "schema"})
        if t["name"] in seen:
            raise CatalogError(f"topic {t['name']} listed twice")
        seen.add(t["name"])
        for consumer in t.get("consumers") or []:
            if consumer not in names:
                raise CatalogError(
                    f"topic {t['name']} names consumer {consumer}, which is not under processors:")
        if t.get("cleanup", "delete") not in ("delete", "compact"):
            raise CatalogError(f"topic {t['name']}: cleanup must be delete or compact")
        if "retention" in t:
            retention_ms(t["retention"])
    return catalog


def delays_of(catalog: dict, processor: dict) -> list[str]:
    """A processor's retry delays: its own list, else the global one (`Catalog::delays_of`)."""
    own = processor.get("retry_delays")
    return list(own if own is not None else catalog["retry_delays"])


def specs(catalog: dict, schemas_topic: str | None = "_schemas") -> list[Topic]:
    """Every topic the catalog implies, in `Catalog::specs` order, then the registry's topic."""
    defaults = catalog["defaults"]
    out: list[Topic] = []
    for t in catalog["topics"]:
        if t.get("cleanup", "delete") == "compact":
            config: dict[str, str | int] = {"cleanup.policy": "compact"}
        else:
            config = {"cleanup.policy": "delete",
                      "retention.ms": retention_ms(t.get("retention", defaults["retention"]))}
        out.append(Topic(t["name"], t.get("partitions", defaults["partitions"]), config, "topic",
                         key=t["key"], consumers=list(t.get("consumers") or [])))
    for p in catalog["processors"]:
        for tier in range(1, len(delays_of(catalog, p)) + 1):
            out.append(Topic(f"{p['name']}.retry.{tier}", defaults["partitions"],
                             {"cleanup.policy": "delete", "retention.ms": RETRY_RETENTION_MS},
                             "retry", processor=p["name"], consumers=[p["name"]]))
        out.append(Topic(f"{p['name']}.dlq", defaults["partitions"],
                         {"cleanup.policy": "delete", "retention.ms": DLQ_RETENTION_MS},
                         "dlq", processor=p["name"]))
    if schemas_topic:
        out.append(Topic(schemas_topic, 1, {"cleanup.policy": "compact"}, "schemas"))
    return out


def inputs_of(catalog: dict, processor: str) -> list[dict]:
    """The catalog topics a processor consumes, in catalog order."""
    return [t for t in catalog["topics"] if processor in (t.get("consumers") or [])]


def main_input(catalog: dict, processor: str) -> tuple[str, int] | None:
    """A processor's main input topic and its partition count: the input with the most
    partitions (the first such in catalog order). More instances than that have nothing to do."""
    default = catalog["defaults"]["partitions"]
    best = None
    for t in inputs_of(catalog, processor):
        n = t.get("partitions", default)
        if best is None or n > best[1]:
            best = (t["name"], n)
    return best


def resource_name(topic: str) -> str:
    """The KafkaTopic's metadata.name: the topic name when Kubernetes allows it."""
    if _DNS_SUBDOMAIN.match(topic) and len(topic) <= 253:
        return topic
    name = re.sub(r"[^a-z0-9.-]+", "-", topic.lower()).strip("-.")
    if not name or not _DNS_SUBDOMAIN.match(name):
        raise CatalogError(f"topic {topic!r} has no usable Kubernetes name")
    return name


def _scalar(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", value) and value.lower() not in _YAML_WORDS
    return value if plain else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(catalog: dict, cluster: str = "sixfold", replicas: int = 3,
           schemas_topic: str | None = "_schemas", source: str = "topics.yaml") -> str:
    """The KafkaTopic documents as YAML text (stable: the same catalog gives the same bytes)."""
    topics = specs(catalog, schemas_topic)
    names = [resource_name(t.name) for t in topics]
    if len(set(names)) != len(names):
        raise CatalogError("two topics map to the same Kubernetes name")
    lines = [
        f"# GENERATED by scripts/strimzi_topics.py from {source}: do not edit.",
        "# Regenerate: python3 scripts/strimzi_topics.py > deploy/k8s/kafka/topics.yaml",
        f"# {len(topics)} topics: the catalog's, each processor's retry tiers and DLQ, and the",
        "# schema registry's. Partitions, cleanup.policy and retention.ms as in the catalog;",
        f"# replicas {replicas} in production (min.insync.replicas comes from the broker config).",
    ]
    for topic, name in zip(topics, names):
        lines += [
            "---",
            "apiVersion: kafka.strimzi.io/v1beta2",
            "kind: KafkaTopic",
            "metadata:",
            f"  name: {name}",
            "  labels:",
            f"    strimzi.io/cluster: {cluster}",
            "    app.kubernetes.io/part-of: sixfold",
            f"    sixfold.io/topic-role: {topic.role}",
        ]
        if topic.processor:
            lines.append(f"    sixfold.io/processor: {topic.processor}")
        if topic.key or topic.consumers:
            lines.append("  annotations:")
            if topic.key:
                lines.append(f"    sixfold.io/key: {_scalar(topic.key)}")
            if topic.consumers:
                lines.append(f"    sixfold.io/consumers: {_scalar(','.join(topic.consumers))}")
        lines += [
            "spec:",
            f"  topicName: {_scalar(topic.name)}",
            f"  partitions: {topic.partitions}",
            f"  replicas: {replicas}",
            "  config:",
        ]
        lines += [f"    {k}: {_scalar(v)}" for k, v in topic.config.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / "topics.yaml",
                        help="the topic catalog (default: topics.yaml at the repository root)")
    parser.add_argument("--cluster", default="sixfold", help="Strimzi Kafka cluster name")
    parser.add_argument("--replicas", type=int, default=3, help="replication factor (default 3)")
    parser.add_argument("--schemas-topic", default="_schemas",
                        help="the schema registry's topic (registry.topic); '' to leave it out")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        text = render(load_catalog(args.catalog), args.cluster, args.replicas,
                      args.schemas_topic or None)
    except (CatalogError, OSError, yaml.YAMLError) as error:
        print(f"strimzi_topics: {error}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
