"""The services and `sixfold run` on free ports, for the Python end-to-end tests.

`Stack` starts a broker (tansu), Redis, the provider stand-ins, the local web site and
`sixfold run` (registry, ingress and every processor) on free ports in one data directory, each
restartable. SIXFOLD_BIN names the `sixfold` binary (`notify-standins` is next to it);
TANSU_BIN the broker.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = "sixfold-dev-key"
PATIENCE_S = 90


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait(what, condition, timeout=PATIENCE_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except (OSError, urllib.error.URLError, KeyError, ValueError) as error:
            last = error
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


class Stack:
    """The services and `sixfold run`, each restartable; `rules` is the rate-limit rules file
    (the document `config/ratelimit.yaml` holds)."""

    def __init__(self, base, rules):
        self.base = pathlib.Path(base)
        self.sixfold = os.environ["SIXFOLD_BIN"]
        self.tansu = os.environ.get(
            "TANSU_BIN", str(pathlib.Path.home() / ".cache/sixfold/tansu/bin/tansu")
        )
        self.ports = {name: free_port() for name in
                      ["broker", "redis", "registry", "ingress", "metrics", "apns", "fcm",
                       "twilio", "smtp"]}
        self.site_port = 19600 + (os.getpid() % 200) * 2
        self.processes = {}
        self.mailbox = self.base / "mailbox"
        self.config = self.base / "e2e.yaml"
        self.rules = self.base / "rules.yaml"
        self.write_config(rules)

    def url(self, path=""):
        return f"http://127.0.0.1:{self.ports['ingress']}{path}"

    def write_config(self, rules):
        config = yaml.safe_load((ROOT / "config/development.yaml").read_text())
        p, b = self.ports, self.base
        config["kafka"]["brokers"] = f"127.0.0.1:{p['broker']}"
        config["registry"] = {"url": f"http://127.0.0.1:{p['registry']}",
                              "listen": f"127.0.0.1:{p['registry']}", "topic": "_schemas"}
        config["redis"]["url"] = f"redis://127.0.0.1:{p['redis']}/"
        config["store"]["sqlite_path"] = str(b / "sixfold.db")
        config["ingress"]["listen"] = f"127.0.0.1:{p['ingress']}"
        config["ingress"]["public_url"] = self.url()
        config["metrics"]["listen"] = f"127.0.0.1:{p['metrics']}"
        config["log"] = {"format": "json", "filter": "warn"}
        config["topics"]["file"] = str(ROOT / "topics.yaml")
        config["ratelimit"]["rules_file"] = str(self.rules)
        config["chat"]["media_dir"] = str(b / "chat-media")
        notify = config["notify"]
        notify["templates_dir"] = str(ROOT / "templates")
        notify["apns"]["endpoint"] = f"http://127.0.0.1:{p['apns']}"
        notify["apns"]["key_path"] = str(b / "standins/apns-key.p8")
        notify["fcm"]["endpoint"] = f"http://127.0.0.1:{p['fcm']}"
        notify["fcm"]["service_account_path"] = str(b / "standins/fcm-service-account.json")
        notify["email"]["port"] = p["smtp"]
        notify["sms"]["endpoint"] = f"http://127.0.0.1:{p['twilio']}"
        config["crawler"]["content_dir"] = str(b / "crawl")
        config["crawler"]["default_delay"] = "100ms"
        config["embedded"] = {"data_dir": str(b), "start_broker": False, "start_redis": False,
                              "start_registry": True, "start_standins": False,
                              "dev_api_key": KEY}
        self.config.write_text(yaml.safe_dump(config))
        self.rules.write_text(yaml.safe_dump(rules))

    def spawn(self, name, args, cwd=None, env=None):
        log = open(self.base / f"{name}.log", "ab")
        # SIXFOLD__* variables (make test sets the broker) would override the scenario's own
        # settings file.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SIXFOLD__")}
        self.processes[name] = subprocess.Popen(
            args, cwd=cwd, env={**inherited, **(env or {})}, stdout=log,
            stderr=subprocess.STDOUT)

    def stop(self, name, sig=signal.SIGTERM):
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=30)

    def start_broker(self):
        data = self.base / "broker"
        data.mkdir(exist_ok=True)
        listener = f"tcp://127.0.0.1:{self.ports['broker']}"
        self.spawn("broker", [self.tansu, "broker", "--listener-url", listener,
                              "--advertised-listener-url", listener,
                              "--storage-engine", "sqlite://tansu.db"], cwd=data)
        wait("the broker", lambda: answers(self.ports["broker"]))

    def start_redis(self):
        data = self.base / "redis"
        data.mkdir(exist_ok=True)
        self.spawn("redis", ["redis-server", "--port", str(self.ports["redis"]),
                             "--bind", "127.0.0.1", "--dir", str(data), "--appendonly", "yes",
                             "--save", ""])
        wait("redis", lambda: answers(self.ports["redis"]))

    def start_standins(self):
        binary = str(pathlib.Path(self.sixfold).with_name("notify-standins"))
        p = self.ports
        self.spawn("standins", [binary], env={
            "STANDINS_APNS_ADDR": f"127.0.0.1:{p['apns']}",
            "STANDINS_FCM_ADDR": f"127.0.0.1:{p['fcm']}",
            "STANDINS_TWILIO_ADDR": f"127.0.0.1:{p['twilio']}",
            "STANDINS_SMTP_ADDR": f"127.0.0.1:{p['smtp']}",
            "STANDINS_MAILBOX": str(self.mailbox),
            "STANDINS_DIR": str(self.base / "standins"),
        })
        wait("the stand-ins", lambda: answers(p["smtp"]))

    def start_site(self):
        ready = self.base / "site-ready"
        self.spawn("site", ["python3", str(ROOT / "tests/site/site.py"), "--mode", "bench",
                            "--base-port", str(self.site_port), "--hosts", "2", "--pages", "15",
                            "--access-log", str(self.base / "site-access.log"),
                            "--ready-file", str(ready)])
        wait("the site", lambda: ready.exists() and ready.read_text().strip())
        return [line.rstrip("/") for line in ready.read_text().split()]

    def start_sixfold(self):
        self.spawn("sixfold", [self.sixfold, "--config", str(self.config), "run"])
        wait("sixfold run to be ready", lambda: self.get("/readyz")[0] == 200, timeout=120)

    def close(self):
        for name in list(self.processes):
            self.stop(name, signal.SIGKILL)

    # HTTP with the development API key.
    def request(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, method=method, headers={
            "Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
            **(headers or {})})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, _json(response.read()), _lower(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read()), _lower(error.headers)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def put(self, path, body):
        return self.request("PUT", path, body)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def _json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def produce(stack, topic, schema_file, key, value):
    """Produces `value` as another team's service would: Confluent's AvroSerializer."""
    registry = SchemaRegistryClient({"url": f"http://127.0.0.1:{stack.ports['registry']}"})
    schema = (ROOT / "schemas/avro" / schema_file).read_text()
    serializer = AvroSerializer(registry, schema)
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{stack.ports['broker']}",
                         "enable.idempotence": True, "compression.type": "zstd"})
    producer.produce(topic, key=StringSerializer()(key),
                     value=serializer(value, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(30) == 0, f"{topic}: not delivered"


def mails(stack, notification_id):
    if not stack.mailbox.exists():
        return []
    return [path for path in stack.mailbox.glob("*.eml")
            if f"<{notification_id}@sixfold>" in path.read_text(errors="replace")]
