#!/usr/bin/env python3
"""Offline checks of the deployment files under deploy/ (make deploy-check).

Checks, without a cluster, Docker or the network:

1. every kustomization.yaml under deploy/k8s lists files that exist, and every file under
   deploy/k8s is listed by one (as a resource or a generator input);
2. every manifest validates against the Kubernetes JSON schemas bundled by
   kubernetes-validate (strict: unknown fields are errors), and every custom resource
   (Strimzi, Scylla Operator, Prometheus Operator) against its schema in deploy/schemas/;
3. the manifests agree with each other: selectors, Services, HPA and PDB targets, volumes,
   ConfigMap keys, Secret references, probe ports, security settings, the hosts in
   settings.yaml, the metric names in the alerts and dashboard;
4. deploy/k8s/kafka/topics.yaml is what scripts/strimzi_topics.py makes of topics.yaml, and
   deploy/k8s/config/topics.yaml is a copy of topics.yaml;
5. no processor can scale past the partitions of its main input topic, nor the ingress past
   the 32 timeline node ids;
6. deploy/docker-compose.yaml is well formed: images, depends_on, volumes, bind mounts.

Exits 1 listing every problem, else prints a short summary. Needs the packages of
tests/python/requirements-deploy.txt.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

try:
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as missing:  # pragma: no cover - a setup problem, said plainly
    sys.exit(f"deploy_check: {missing.name} is missing; "
             "pip install -r tests/python/requirements-deploy.txt (or: make deploy-check)")

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
sys.dont_write_bytecode = True  # leave no __pycache__ in scripts/
import strimzi_topics  # noqa: E402  (next to this file)

# The oldest Kubernetes the manifests target (StatefulSet pod-index label, preStop sleep) and
# the newest kubernetes-validate bundles: both must accept every manifest.
K8S_VERSIONS = ("1.33.0", "1.37.0")

# Secrets created by hand (docs/operations.md), never by these manifests, and their keys.
EXTERNAL_SECRETS = {
    "sixfold-secrets": {"urls-code-secret", "chat-token-secret", "sms-auth-token", "smtp-password"},
    "sixfold-apns-key": {"key.p8"},
    "sixfold-fcm-account": {"service-account.json"},
}
# Timeline node ids are 0-31 and each ingress pod takes its ordinal as its id.
MAX_INGRESS = 32
KUSTOMIZATION_KEYS = {
    "apiVersion", "kind", "namespace", "resources", "configMapGenerator", "secretGenerator",
    "generatorOptions", "labels", "commonLabels", "commonAnnotations", "images", "patches",
    "namePrefix", "nameSuffix", "replicas", "components",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "DaemonSet")
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE)", re.I)
COMPOSE_TOP = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "version"}
COMPOSE_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


class Problems:
    """Every problem found, with where it was found."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: object, message: str) -> None:
        self.items.append(f"{where}: {message}")


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_yaml_docs(path: Path, problems: Problems, root: Path) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        problems.add(rel(path, root), f"cannot read YAML: {error}")
        return []
    good = []
    for i, doc in enumerate(docs):
        where = f"{rel(path, root)}[{i}]"
        if not isinstance(doc, dict):
            problems.add(where, "a manifest must be a mapping")
        elif not all(k in doc for k in ("apiVersion", "kind", "metadata")) or \
                not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
            problems.add(where, "needs apiVersion, kind and metadata.name")
        else:
            good.append(doc)
    return good


# ------------------------------------------------------------------------- kustomizations

class Kustomize:
    """What the kustomizations under deploy/k8s list."""

    def __init__(self) -> None:
        self.manifests: list[Path] = []            # resource files, in listing order
        self.referenced: set[Path] = set()         # every file some kustomization names
        self.configmaps: dict[str, dict] = {}      # generated ConfigMap name -> {keys, labels, files}
        self.count = 0


def check_kustomizations(k8s: Path, root: Path, problems: Problems) -> Kustomize:
    out = Kustomize()
    found = sorted(p for p in k8s.rglob("kustomization.yaml"))
    if not (k8s / "kustomization.yaml").is_file():
        problems.add(rel(k8s, root), "has no kustomization.yaml")
    for kfile in found:
        out.count += 1
        where = rel(kfile, root)
        base = kfile.parent
        try:
            doc = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            problems.add(where, f"cannot read YAML: {error}")
            continue
        out.referenced.add(kfile.resolve())
        if doc.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or doc.get("kind") != "Kustomization":
            problems.add(where, "needs apiVersion kustomize.config.k8s.io/v1beta1 and kind Kustomization")
        for key in sorted(set(doc) - KUSTOMIZATION_KEYS):
            problems.add(where, f"unknown field {key!r}")
        seen = set()
        for entry in doc.get("resources") or []:
            if entry in seen:
                problems.add(where, f"resource {entry} listed twice")
            seen.add(entry)
            target = (base / entry)
            if not target.exists():
                problems.add(where, f"resource {entry} does not exist")
            elif target.is_dir():
                if not (target / "kustomization.yaml").is_file():
                    problems.add(where, f"resource directory {entry} has no kustomization.yaml")
            elif target.suffix not in (".yaml", ".yml"):
                problems.add(where, f"resource {entry} is not a YAML file")
            else:
                out.manifests.append(target)
                out.referenced.add(target.resolve())
        for gen_kind in ("configMapGenerator", "secretGenerator"):
            for gen in doc.get(gen_kind) or []:
                name = gen.get("name")
                if not name:
                    problems.add(where, f"a {gen_kind} entry has no name")
                    continue
                info = {"keys": set(), "labels": (gen.get("options") or {}).get("labels") or {},
                        "files": {}, "where": where}
                for item in gen.get("files") or []:
                    key, _, path = item.rpartition("=")
                    target = base / path
                    key = key or Path(path).name
                    if not target.is_file():
                        problems.add(where, f"{gen_kind} {name}: file {path} does not exist")
                        continue
                    if key in info["keys"]:
                        problems.add(where, f"{gen_kind} {name}: key {key} twice")
                    info["keys"].add(key)
                    info["files"][key] = target
                    out.referenced.add(target.resolve())
                for item in gen.get("envs") or []:
                    target = base / item
                    if not target.is_file():
                        problems.add(where, f"{gen_kind} {name}: env file {item} does not exist")
                    else:
                        out.referenced.add(target.resolve())
                for literal in gen.get("literals") or []:
                    info["keys"].add(literal.split("=", 1)[0])
                if gen_kind == "configMapGenerator":
                    out.configmaps[name] = info
                elif gen.get("literals") or gen.get("files"):
                    problems.add(where, f"secretGenerator {name}: secrets are never kept in the repository")
    for path in sorted(k8s.rglob("*")):
        if path.is_file() and path.resolve() not in out.referenced:
            problems.add(rel(path, root), "is not listed in any kustomization.yaml "
                                          "(resources, or a generator's files)")
    return out


# ------------------------------------------------------------------------- schemas

def schema_file(schemas: Path, api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return schemas / f"{group or 'core'}_{version}_{kind}.json"


def validate_manifests(docs: list[tuple[str, dict]], schemas: Path, problems: Problems) -> tuple[int, int]:
    """Kubernetes schemas for built-in kinds, deploy/schemas/ for custom resources."""
    builtin = custom = 0
    validators: dict[Path, jsonschema.protocols.Validator] = {}
    for where, doc in docs:
        api, kind = doc["apiVersion"], doc["kind"]
        try:
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
            builtin += 1
            continue
        except kubernetes_validate.SchemaNotFoundError:
            pass
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.absolute_path) or "(top)"
            problems.add(where, f"{kind} {doc['metadata']['name']}: Kubernetes {error.version} "
                                f"schema: at {path}: {error.message}")
            continue
        except Exception as error:  # noqa: BLE001 - an unreadable schema is a finding too
            problems.add(where, f"{kind}: kubernetes-validate failed: {error}")
            continue
        path = schema_file(schemas, api, kind)
        if not path.is_file():
            problems.add(where, f"{api} {kind} is neither a Kubernetes kind nor has a schema "
                                f"in deploy/schemas ({path.name})")
            continue
        if path not in validators:
            schema = json.loads(path.read_text(encoding="utf-8"))
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validators[path] = cls(schema)
        errors = sorted(validators[path].iter_errors(doc), key=lambda e: list(e.absolute_path))
        for error in errors:
            at = ".".join(str(p) for p in error.absolute_path) or "(top)"
            problems.add(where, f"{kind} {doc['metadata']['name']}: {path.name}: at {at}: {error.message}")
        custom += 1
    return builtin, custom


# ------------------------------------------------------------------------- consistency

def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] in WORKLOAD_KINDS:
        return ((doc.get("spec") or {}).get("template") or {}).get("spec")
    return None


def pod_labels(doc: dict) -> dict:
    return (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def sixfold_command(container: dict) -> list[str]:
    """The sixfold arguments of a container running the Sixfold image, else []."""
    if "sixfold/sixfold" not in str(container.get("image", "")):
        return []
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def shutdown_grace(root: Path) -> int | None:
    """GRACE_PERIOD of crates/runtime/src/shutdown.rs, in seconds."""
    try:
        text = (root / "crates/runtime/src/shutdown.rs").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"GRACE_PERIOD\s*:\s*Duration\s*=\s*Duration::from_secs\((\d+)\)", text)
    return int(match.group(1)) if match else None


def check_consistency(docs: list[tuple[str, dict]], kz: Kustomize, root: Path,
                      problems: Problems) -> None:
    by_kind: dict[str, dict[str, tuple[str, dict]]] = defaultdict(dict)
    for where, doc in docs:
        name = doc["metadata"]["name"]
        if name in by_kind[doc["kind"]]:
            problems.add(where, f"{doc['kind']} {name} is defined twice "
                                f"(also in {by_kind[doc['kind']][name][0]})")
        by_kind[doc["kind"]][name] = (where, doc)
    workloads = [(w, d) for w, d in docs if d["kind"] in WORKLOAD_KINDS]
    configmaps = set(kz.configmaps) | set(by_kind["ConfigMap"])
    pvcs = set(by_kind["PersistentVolumeClaim"])
    grace = shutdown_grace(root)
    if grace is None:
        problems.add("crates/runtime/src/shutdown.rs", "cannot find GRACE_PERIOD")

    for where, doc in docs:
        if doc["kind"] == "Secret" and (doc.get("data") or doc.get("stringData")):
            problems.add(where, f"Secret {doc['metadata']['name']} holds data: secrets are created "
                                "by hand, never kept in the repository")

    for where, doc in workloads:
        kind, name = doc["kind"], doc["metadata"]["name"]
        spec = doc.get("spec") or {}
        labels = pod_labels(doc)
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if kind != "Job" and not matches(selector, labels):
            problems.add(where, f"{kind} {name}: selector {selector} does not match its pod labels")
        if kind == "StatefulSet":
            svc = by_kind["Service"].get(spec.get("serviceName", ""))
            if not svc:
                problems.add(where, f"StatefulSet {name}: serviceName {spec.get('serviceName')} is no Service")
            elif svc[1]["spec"].get("clusterIP") != "None":
                problems.add(where, f"StatefulSet {name}: its Service {spec['serviceName']} is not headless")
        pod = pod_spec(doc) or {}
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        claim_templates = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
        psc = pod.get("securityContext") or {}
        if not psc.get("runAsNonRoot"):
            problems.add(where, f"{kind} {name}: pod securityContext.runAsNonRoot must be true")
        for vname, vol in volumes.items():
            if "configMap" in vol and vol["configMap"].get("name") not in configmaps:
                problems.add(where, f"{kind} {name}: volume {vname}: no ConfigMap {vol['configMap'].get('name')}")
            if "secret" in vol:
                secret = vol["secret"].get("secretName")
                if secret not in EXTERNAL_SECRETS:
                    problems.add(where, f"{kind} {name}: volume {vname}: unknown Secret {secret}")
                for item in vol["secret"].get("items") or []:
                    if item["key"] not in EXTERNAL_SECRETS.get(secret, set()):
                        problems.add(where, f"{kind} {name}: volume {vname}: Secret {secret} has no key {item['key']}")
            if "persistentVolumeClaim" in vol and vol["persistentVolumeClaim"].get("claimName") not in pvcs:
                problems.add(where, f"{kind} {name}: volume {vname}: no PersistentVolumeClaim "
                                    f"{vol['persistentVolumeClaim'].get('claimName')}")
        for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            cname = f"{kind} {name} container {container.get('name')}"
            ports = {p.get("name") for p in container.get("ports") or [] if p.get("name")}
            for mount in container.get("volumeMounts") or []:
                vol = volumes.get(mount["name"])
                if vol is None and mount["name"] not in claim_templates:
                    problems.add(where, f"{cname}: mounts {mount['name']}, which is no volume")
                    continue
                sub = mount.get("subPath")
                cm = (vol or {}).get("configMap", {}).get("name")
                if sub and cm in kz.configmaps and sub not in kz.configmaps[cm]["keys"]:
                    problems.add(where, f"{cname}: subPath {sub} is no key of ConfigMap {cm}")
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    if ref.get("name") not in EXTERNAL_SECRETS:
                        problems.add(where, f"{cname}: env {env['name']}: unknown Secret {ref.get('name')}")
                    elif ref.get("key") not in EXTERNAL_SECRETS[ref["name"]]:
                        problems.add(where, f"{cname}: env {env['name']}: Secret {ref['name']} has no key {ref.get('key')}")
                elif "value" in env and SECRET_NAME.search(env["name"]):
                    problems.add(where, f"{cname}: env {env['name']} looks secret but is inlined; "
                                        "use valueFrom.secretKeyRef")
                cmref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if cmref and cmref.get("name") not in configmaps:
                    problems.add(where, f"{cname}: env {env['name']}: no ConfigMap {cmref.get('name')}")
            for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(probe_name) or {}
                for action in ("httpGet", "tcpSocket", "grpc"):
                    port = (probe.get(action) or {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        problems.add(where, f"{cname}: {probe_name} uses port {port}, which it does not name")
            res = container.get("resources") or {}
            for part in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in (res.get(part) or {}):
                        problems.add(where, f"{cname}: resources.{part}.{what} is not set")
            csc = container.get("securityContext") or {}
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.add(where, f"{cname}: securityContext.readOnlyRootFilesystem must be true")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.add(where, f"{cname}: securityContext.allowPrivilegeEscalation must be false")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                problems.add(where, f"{cname}: securityContext.capabilities.drop must include ALL")
            args = sixfold_command(container)
            if args and kind != "Job":
                tgp = pod.get("terminationGracePeriodSeconds", 30)
                if grace is not None and tgp <= grace:
                    problems.add(where, f"{cname}: terminationGracePeriodSeconds {tgp} must exceed "
                                        f"the process's shutdown grace ({grace} s)")
                if "--config" not in args:
                    problems.add(where, f"{cname}: runs sixfold without --config")
                if not (container.get("livenessProbe") and container.get("readinessProbe")):
                    problems.add(where, f"{cname}: needs liveness and readiness probes")

    def selected(selector: dict) -> list[tuple[str, dict]]:
        return [(w, d) for w, d in workloads if matches(selector, pod_labels(d))]

    for where, doc in by_kind["Service"].values():
        name, spec = doc["metadata"]["name"], doc.get("spec") or {}
        targets = selected(spec.get("selector") or {})
        if not targets:
            problems.add(where, f"Service {name}: its selector matches no workload's pods")
        for port in spec.get("ports") or []:
            tp = port.get("targetPort")
            if isinstance(tp, str):
                for w, d in targets:
                    names = {p.get("name") for c in (pod_spec(d) or {}).get("containers", [])
                             for p in c.get("ports") or []}
                    if tp not in names:
                        problems.add(where, f"Service {name}: targetPort {tp} is not a port of {d['metadata']['name']}")
    for where, doc in by_kind["PodDisruptionBudget"].values():
        sel = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not selected(sel):
            problems.add(where, f"PodDisruptionBudget {doc['metadata']['name']}: selects no workload")
    for where, doc in by_kind["HorizontalPodAutoscaler"].values():
        spec = doc["spec"]
        ref = spec["scaleTargetRef"]
        if ref["name"] not in by_kind[ref["kind"]]:
            problems.add(where, f"HorizontalPodAutoscaler {doc['metadata']['name']}: no {ref['kind']} {ref['name']}")
        elif (by_kind[ref["kind"]][ref["name"]][1].get("spec") or {}).get("replicas") is not None:
            problems.add(where, f"HorizontalPodAutoscaler {doc['metadata']['name']}: {ref['kind']} {ref['name']} "
                                "sets replicas, which fights the autoscaler on every apply")
        if spec.get("minReplicas", 1) > spec["maxReplicas"]:
            problems.add(where, f"HorizontalPodAutoscaler {doc['metadata']['name']}: minReplicas > maxReplicas")
    for where, doc in by_kind["PodMonitor"].values():
        sel = doc["spec"]["selector"].get("matchLabels") or {}
        targets = selected(sel)
        if not targets:
            problems.add(where, f"PodMonitor {doc['metadata']['name']}: selects no pods")
        for ep in doc["spec"]["podMetricsEndpoints"]:
            for w, d in targets:
                names = {p.get("name") for c in (pod_spec(d) or {}).get("containers", []) for p in c.get("ports") or []}
                if ep["port"] not in names:
                    problems.add(where, f"PodMonitor {doc['metadata']['name']}: {d['metadata']['name']} has no port {ep['port']}")
    for where, doc in by_kind["ServiceMonitor"].values():
        sel = doc["spec"]["selector"].get("matchLabels") or {}
        services = [d for _, d in by_kind["Service"].values()
                    if matches(sel, d["metadata"].get("labels") or {})]
        if len(services) != 1:
            problems.add(where, f"ServiceMonitor {doc['metadata']['name']}: selects {len(services)} Services "
                                "(one expected: more would scrape the same pods twice)")
        for ep in doc["spec"]["endpoints"]:
            for svc in services:
                if ep["port"] not in {p.get("name") for p in svc["spec"].get("ports") or []}:
                    problems.add(where, f"ServiceMonitor {doc['metadata']['name']}: Service "
                                        f"{svc['metadata']['name']} has no port {ep['port']}")
    check_kafka(by_kind, problems)
    check_hosts(by_kind, kz, root, problems)
    check_metrics(by_kind, kz, root, problems)


def check_kafka(by_kind: dict, problems: Problems) -> None:
    clusters = by_kind["Kafka"]
    brokers: dict[str, int] = defaultdict(int)
    for where, pool in by_kind["KafkaNodePool"].values():
        cluster = pool["metadata"]["labels"].get("strimzi.io/cluster")
        if cluster not in clusters:
            problems.add(where, f"KafkaNodePool {pool['metadata']['name']}: no Kafka {cluster}")
        if "broker" in pool["spec"]["roles"]:
            brokers[cluster] += pool["spec"]["replicas"]
    for where, kafka in clusters.values():
        name = kafka["metadata"]["name"]
        config = kafka["spec"]["kafka"].get("config") or {}
        isr = int(config.get("min.insync.replicas", 1))
        rf = int(config.get("default.replication.factor", 1))
        if brokers[name] < rf or not isr < rf:
            problems.add(where, f"Kafka {name}: needs min.insync.replicas < default.replication.factor "
                                f"<= brokers (have {isr}, {rf}, {brokers[name]})")
    for where, topic in by_kind["KafkaTopic"].values():
        cluster = topic["metadata"]["labels"].get("strimzi.io/cluster")
        if cluster not in clusters:
            problems.add(where, f"KafkaTopic {topic['metadata']['name']}: no Kafka {cluster}")
        elif topic["spec"]["replicas"] > brokers[cluster]:
            problems.add(where, f"KafkaTopic {topic['metadata']['name']}: {topic['spec']['replicas']} replicas "
                                f"but {brokers[cluster]} brokers")


def known_hosts(by_kind: dict) -> set[str]:
    """Names a pod in the namespace can resolve: Services, operator-made Services, pod DNS."""
    hosts = set(by_kind["Service"])
    hosts |= {f"{name}-kafka-bootstrap" for name in by_kind["Kafka"]}
    hosts |= {f"{name}-client" for name in by_kind["ScyllaCluster"]}
    for _, sts in by_kind["StatefulSet"].values():
        spec = sts["spec"]
        for i in range(spec.get("replicas") or 0):
            hosts.add(f"{sts['metadata']['name']}-{i}.{spec['serviceName']}")
    return hosts


def host_of(address: str) -> str:
    address = re.sub(r"^[a-z]+://", "", str(address)).split("/", 1)[0]
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return re.sub(r"\.[a-z0-9-]+\.svc(\.cluster\.local)?$", "", host)


def settings_sections(root: Path) -> set[str] | None:
    """Top-level sections of the Settings struct (crates/sixfold/src/settings.rs)."""
    try:
        text = (root / "crates/sixfold/src/settings.rs").read_text(encoding="utf-8")
    except OSError:
        return None
    body = re.search(r"pub struct Settings\s*\{(.*?)\n\}", text, re.S)
    return set(re.findall(r"pub (\w+):", body.group(1))) if body else None


def check_settings_doc(where: str, settings: dict, sections: set[str] | None, problems: Problems) -> None:
    if not isinstance(settings, dict):
        problems.add(where, "is not a mapping")
        return
    if sections is not None:
        for key in sorted(set(settings) - sections):
            problems.add(where, f"unknown settings section {key!r} (sections: {', '.join(sorted(sections))})")


def check_env_names(where: str, names: list[str], sections: set[str] | None, problems: Problems) -> None:
    for name in names:
        if name.startswith("SIXFOLD__"):
            section = name.split("__")[1].lower() if name.count("__") >= 2 else ""
            if sections is not None and section not in sections:
                problems.add(where, f"{name} names no settings section")


def check_hosts(by_kind: dict, kz: Kustomize, root: Path, problems: Problems) -> None:
    info = kz.configmaps.get("sixfold-settings")
    sections = settings_sections(root)
    if sections is None:
        problems.add("crates/sixfold/src/settings.rs", "cannot find struct Settings")
    if not info or "settings.yaml" not in info["files"]:
        problems.add("deploy/k8s/kustomization.yaml", "ConfigMap sixfold-settings must hold settings.yaml")
        return
    where = rel(info["files"]["settings.yaml"], root)
    settings = yaml.safe_load(info["files"]["settings.yaml"].read_text(encoding="utf-8"))
    check_settings_doc(where, settings, sections, problems)
    hosts = known_hosts(by_kind)
    addresses = [("kafka.brokers", a) for a in str(settings.get("kafka", {}).get("brokers", "")).split(",") if a]
    redis = settings.get("redis", {})
    addresses += [("registry.url", settings.get("registry", {}).get("url", ""))]
    # Production Redis is the cluster: its seed nodes, or else the single node's URL.
    addresses += ([("redis.cluster_nodes", a) for a in redis.get("cluster_nodes") or []]
                  or [("redis.url", redis.get("url", ""))])
    addresses += [("store.scylla_nodes", a) for a in settings.get("store", {}).get("scylla_nodes") or []]
    addresses += [("ratelimit.cluster_nodes", a) for a in settings.get("ratelimit", {}).get("cluster_nodes") or []]
    for key, address in addresses:
        if host_of(address) not in hosts:
            problems.add(where, f"{key}: {address} reaches nothing deployed here "
                                f"(known: {', '.join(sorted(hosts))})")
    if settings.get("store", {}).get("backend") != "scylla":
        problems.add(where, "store.backend must be scylla in production")
    topics_file = str(settings.get("topics", {}).get("file", ""))
    if topics_file != "/etc/sixfold/topics.yaml" or "topics.yaml" not in info["keys"]:
        problems.add(where, "topics.file must be /etc/sixfold/topics.yaml, from ConfigMap sixfold-settings")
    names = [e["name"] for _, d in by_kind["Deployment"].items() for c in (pod_spec(d[1]) or {}).get("containers", [])
             for e in c.get("env") or []]
    names += [e["name"] for _, d in by_kind["StatefulSet"].items() for c in (pod_spec(d[1]) or {}).get("containers", [])
              for e in c.get("env") or []]
    check_env_names("deploy/k8s", names, sections, problems)


def code_metric_names(root: Path) -> set[str]:
    names: set[str] = set()
    for folder in ("crates", "processors"):
        for path in (root / folder).rglob("*.rs"):
            try:
                names |= set(re.findall(r'"(sixfold_[a-z0-9_]+)"', path.read_text(encoding="utf-8")))
            except OSError:
                continue
    return names


def check_metrics(by_kind: dict, kz: Kustomize, root: Path, problems: Problems) -> None:
    """Every sixfold_* metric the alerts and dashboard query is one the code registers."""
    defined = code_metric_names(root)
    if not defined:
        problems.add("crates/", "found no sixfold_* metric names in the Rust sources")
        return
    # Labels the monitors add (relabelings) are not metrics.
    labels = {r.get("targetLabel") for kind in ("PodMonitor", "ServiceMonitor")
              for _, m in by_kind[kind].values()
              for ep in m["spec"].get("podMetricsEndpoints") or m["spec"].get("endpoints") or []
              for r in ep.get("relabelings") or []}
    queries: list[tuple[str, str]] = []
    for where, rule in by_kind["PrometheusRule"].values():
        for group in rule["spec"]["groups"]:
            queries += [(f"{where} {r.get('alert') or r.get('record')}", r["expr"]) for r in group["rules"]]
    dashboards = [(name, info) for name, info in kz.configmaps.items()
                  if info["labels"].get("grafana_dashboard") == "1"]
    if not dashboards:
        problems.add("deploy/k8s/monitoring", "no ConfigMap generator labelled grafana_dashboard: \"1\"")
    for name, info in dashboards:
        for key, path in info["files"].items():
            where = rel(path, root)
            try:
                board = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                problems.add(where, f"not JSON: {error}")
                continue
            panels = [p for p in board.get("panels") or [] if p.get("type") != "row"]
            if not board.get("title") or not panels:
                problems.add(where, "a dashboard needs a title and panels")
            for panel in panels:
                targets = panel.get("targets") or []
                if not targets or not all(t.get("expr") for t in targets):
                    problems.add(where, f"panel {panel.get('title')!r} has no query")
                queries += [(f"{where} panel {panel.get('title')!r}", t.get("expr", "")) for t in targets]
    for where, expr in queries:
        for metric in set(re.findall(r"\b(sixfold_[a-z0-9_]+)", expr)):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if metric not in defined and base not in defined and metric not in labels:
                problems.add(where, f"queries {metric}, which no Rust source defines")


# ------------------------------------------------------------------------- topics

def check_topics(root: Path, docs: list[tuple[str, dict]], problems: Problems) -> tuple[int, dict | None]:
    catalog_path = root / "topics.yaml"
    generated = root / "deploy/k8s/kafka/topics.yaml"
    try:
        catalog = strimzi_topics.load_catalog(catalog_path)
        expected = strimzi_topics.render(catalog)
    except (strimzi_topics.CatalogError, OSError, yaml.YAMLError) as error:
        problems.add("topics.yaml", f"cannot derive the topics: {error}")
        return 0, None
    actual = generated.read_text(encoding="utf-8") if generated.is_file() else ""
    if actual != expected:
        diff = list(difflib.unified_diff(actual.splitlines(), expected.splitlines(),
                                         "deploy/k8s/kafka/topics.yaml", "scripts/strimzi_topics.py", n=1, lineterm=""))
        shown = "\n    ".join(diff[:24]) + ("\n    ..." if len(diff) > 24 else "")
        problems.add("deploy/k8s/kafka/topics.yaml",
                     "differs from what topics.yaml implies; regenerate it with\n"
                     "    python3 scripts/strimzi_topics.py > deploy/k8s/kafka/topics.yaml\n    " + shown)
    copy = root / "deploy/k8s/config/topics.yaml"
    if not copy.is_file() or copy.read_bytes() != catalog_path.read_bytes():
        problems.add("deploy/k8s/config/topics.yaml", "must be an exact copy of topics.yaml "
                                                      "(cp topics.yaml deploy/k8s/config/topics.yaml)")
    count = sum(1 for _, d in docs if d["kind"] == "KafkaTopic")
    return count, catalog


def check_scaling(docs: list[tuple[str, dict]], catalog: dict, problems: Problems) -> int:
    """HPA ceilings: a processor's main input partitions; the ingress's 32 node ids."""
    workloads = {(d["kind"], d["metadata"]["name"]): d for _, d in docs if d["kind"] in WORKLOAD_KINDS}
    processors_seen: dict[str, str] = {}
    checked = 0
    for where, doc in docs:
        for c in (pod_spec(doc) or {}).get("containers", []):
            args = sixfold_command(c)
            if "processor" in args:
                name = args[args.index("processor") + 1] if args.index("processor") + 1 < len(args) else ""
                if name in processors_seen:
                    problems.add(where, f"processor {name} runs in two workloads ({processors_seen[name]})")
                processors_seen[name] = doc["metadata"]["name"]
    catalog_processors = [p["name"] for p in catalog["processors"]]
    for name in catalog_processors:
        if name not in processors_seen:
            problems.add("deploy/k8s/processors", f"processor {name} (topics.yaml) has no Deployment")
    for name in processors_seen:
        if name not in catalog_processors:
            problems.add("deploy/k8s/processors", f"processor {name} is not in topics.yaml")
    hpa_targets = set()
    for where, doc in docs:
        if doc["kind"] != "HorizontalPodAutoscaler":
            continue
        ref = doc["spec"]["scaleTargetRef"]
        target = workloads.get((ref["kind"], ref["name"]))
        hpa_targets.add(ref["name"])
        if target is None:
            continue
        maximum = doc["spec"]["maxReplicas"]
        for c in (pod_spec(target) or {}).get("containers", []):
            args = sixfold_command(c)
            if "processor" in args:
                name = args[args.index("processor") + 1]
                main = strimzi_topics.main_input(catalog, name)
                if main is None:
                    problems.add(where, f"processor {name} consumes no topic in topics.yaml")
                    continue
                checked += 1
                if maximum > main[1]:
                    problems.add(where, f"HPA {doc['metadata']['name']}: maxReplicas {maximum} exceeds the "
                                        f"{main[1]} partitions of {name}'s main input topic {main[0]} "
                                        "(extra consumers would idle)")
                if not any(m.get("type") == "External" and m["external"]["metric"]["name"] == "sixfold_consumer_lag"
                           for m in doc["spec"].get("metrics") or []):
                    problems.add(where, f"HPA {doc['metadata']['name']}: must scale on sixfold_consumer_lag")
            elif "ingress" in args:
                checked += 1
                if maximum > MAX_INGRESS:
                    problems.add(where, f"HPA {doc['metadata']['name']}: maxReplicas {maximum} exceeds the "
                                        f"{MAX_INGRESS} timeline node ids (timeline.node_id 0-31)")
                env = {e["name"]: e for e in c.get("env") or []}
                ref_field = ((env.get("SIXFOLD__TIMELINE__NODE_ID") or {}).get("valueFrom") or {}).get("fieldRef") or {}
                if "pod-index" not in ref_field.get("fieldPath", "") or target["kind"] != "StatefulSet":
                    problems.add(where, "the ingress must be a StatefulSet setting SIXFOLD__TIMELINE__NODE_ID "
                                        "from its pod index: tweet ids need distinct node ids")
    for name, workload in processors_seen.items():
        if workload not in hpa_targets:
            problems.add("deploy/k8s/processors", f"processor {name} ({workload}) has no HorizontalPodAutoscaler")
    return checked


# ------------------------------------------------------------------------- compose

def check_compose(path: Path, root: Path, catalog: dict | None, problems: Problems) -> int:
    where = rel(path, root)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        problems.add(where, f"cannot read: {error}")
        return 0
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        problems.add(where, "needs a services mapping")
        return 0
    for key in doc:
        if key not in COMPOSE_TOP and not str(key).startswith("x-"):
            problems.add(where, f"unknown top-level key {key!r}")
    services = doc["services"]
    volumes = set((doc.get("volumes") or {}).keys())
    sections = settings_sections(root)
    graph: dict[str, list[str]] = {}
    for name, svc in services.items():
        at = f"{where} service {name}"
        if not isinstance(svc, dict):
            problems.add(at, "is not a mapping")
            continue
        if not (svc.get("image") or svc.get("build")):
            problems.add(at, "has neither image nor build")
        for key in ("command", "entrypoint"):
            value = svc.get(key)
            if value is not None and not (isinstance(value, str) or
                                          (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                problems.add(at, f"{key} must be a string or a list of strings")
        deps = svc.get("depends_on") or []
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        if not isinstance(deps, dict):
            problems.add(at, "depends_on must be a list or a mapping")
            deps = {}
        graph[name] = list(deps)
        for dep, spec in deps.items():
            if dep not in services:
                problems.add(at, f"depends_on {dep}, which is no service")
                continue
            if dep == name:
                problems.add(at, "depends on itself")
            condition = (spec or {}).get("condition", "service_started")
            if condition not in COMPOSE_CONDITIONS:
                problems.add(at, f"depends_on {dep}: unknown condition {condition}")
            if condition == "service_healthy" and not services[dep].get("healthcheck"):
                problems.add(at, f"waits for {dep} to be healthy, but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get("restart", "no") != "no":
                problems.add(at, f"waits for {dep} to complete, but {dep} restarts")
        for mount in svc.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else (mount or {}).get("source", "")
            if not source:
                continue
            if source.startswith((".", "/", "~")):
                if source.startswith(".") and not (path.parent / source).exists():
                    problems.add(at, f"bind mount {source} does not exist")
            elif source not in volumes:
                problems.add(at, f"named volume {source} is not declared under volumes:")
        env = svc.get("environment") or {}
        names = list(env) if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        check_env_names(at, names, sections, problems)
        for port in svc.get("ports") or []:
            if not re.fullmatch(r"(\d+(\.\d+){3}:)?\d+(-\d+)?(:\d+(-\d+)?)?(/(tcp|udp))?", str(port)):
                problems.add(at, f"port {port!r} is not HOST:CONTAINER")
    # depends_on must not loop (compose refuses to start).
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                problems.add(where, f"depends_on cycle: {' -> '.join(trail + [node, nxt])}")
            elif nxt in graph and not state.get(nxt):
                visit(nxt, trail + [node])
        state[node] = 2
    for node in graph:
        if not state.get(node):
            visit(node, [])
    runs = [" ".join(str(a) for a in ([] if not isinstance(s.get("command"), list) else s["command"]))
            for s in services.values() if isinstance(s, dict)]
    if not any(r.endswith("topics apply") for r in runs):
        problems.add(where, "no one-shot service runs `sixfold topics apply`")
    if not any(r.endswith(" ingress") for r in runs):
        problems.add(where, "no service runs the ingress")
    for p in (catalog or {}).get("processors", []):
        if not any(r.endswith(f"processor {p['name']}") for r in runs):
            problems.add(where, f"no service runs processor {p['name']}")
    settings = path.parent / "compose/settings.yaml"
    if settings.is_file():
        check_settings_doc(rel(settings, root), yaml.safe_load(settings.read_text(encoding="utf-8")),
                           sections, problems)
    return len(services)


# ------------------------------------------------------------------------- main

def run(root: Path) -> int:
    started = time.monotonic()
    problems = Problems()
    k8s, schemas = root / "deploy/k8s", root / "deploy/schemas"
    kz = check_kustomizations(k8s, root, problems)
    docs: list[tuple[str, dict]] = []
    for path in kz.manifests:
        for i, doc in enumerate(load_yaml_docs(path, problems, root)):
            docs.append((f"{rel(path, root)}[{i}] {doc['kind']}/{doc['metadata']['name']}", doc))
    for name, info in kz.configmaps.items():
        for key, path in info["files"].items():
            if path.suffix in (".yaml", ".yml"):
                try:
                    yaml.safe_load(path.read_text(encoding="utf-8"))
                except yaml.YAMLError as error:
                    problems.add(rel(path, root), f"ConfigMap {name}: not YAML: {error}")
    builtin, custom = validate_manifests(docs, schemas, problems)

    def stage(name: str, check, default):
        # A manifest broken in a way the schemas report may trip a later check: say so
        # instead of a traceback.
        try:
            return check()
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
            problems.add(name, f"could not finish ({type(error).__name__}: {error}); "
                               "fix the problems above first")
            return default

    stage("consistency checks", lambda: check_consistency(docs, kz, root, problems), None)
    topic_count, catalog = stage("topic checks", lambda: check_topics(root, docs, problems), (0, None))
    scaled = stage("scaling checks", lambda: check_scaling(docs, catalog, problems), 0) if catalog else 0
    services = stage("compose checks", lambda: check_compose(
        root / "deploy/docker-compose.yaml", root, catalog, problems), 0)
    elapsed = time.monotonic() - started
    if problems.items:
        print(f"deploy_check: {len(problems.items)} problem(s):", file=sys.stderr)
        for item in problems.items:
            print(f"  - {item}", file=sys.stderr)
        print(f"deploy_check: FAILED ({elapsed:.1f} s)", file=sys.stderr)
        return 1
    versions = " and ".join(v.rsplit(".", 1)[0] for v in K8S_VERSIONS)
    print(f"deploy_check: {kz.count} kustomizations, every file listed")
    print(f"deploy_check: {len(docs)} manifests valid ({builtin} against Kubernetes {versions} "
          f"strict, {custom} custom resources against deploy/schemas)")
    print(f"deploy_check: {topic_count} topics match topics.yaml "
          "(deploy/k8s/kafka/topics.yaml = scripts/strimzi_topics.py)")
    print(f"deploy_check: {scaled} autoscalers within partitions / node ids; "
          f"compose: {services} services consistent")
    print(f"deploy_check: OK ({elapsed:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=SCRIPTS.parent,
                        help="repository root (default: the one holding this script)")
    args = parser.parse_args(argv)
    return run(args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())
