"""`sixfold registry` against Confluent's own Python client.

Starts the registry binary named by SIXFOLD_BIN (`$SIXFOLD_BIN registry`) on a free loopback
port with a fresh schemas topic, then drives it with `SchemaRegistryClient`, `AvroSerializer`
and `AvroDeserializer` in their default settings, as another team's service would. The broker
comes from SIXFOLD__KAFKA__BROKERS (default 127.0.0.1:9092), passed on to the binary.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

CLICK_V1 = {
    "type": "record",
    "name": "Click",
    "namespace": "sixfold.test",
    "fields": [{"name": "code", "type": "string"}, {"name": "at", "type": "long"}],
}
CLICK_V2 = {  # adds a field with a default: backward and forward compatible
    **CLICK_V1,
    "fields": CLICK_V1["fields"] + [{"name": "referrer", "type": "string", "default": ""}],
}
CLICK_V3 = {  # adds a field without a default: not backward compatible
    **CLICK_V1,
    "fields": CLICK_V2["fields"] + [{"name": "ip", "type": "string"}],
}

START_TIMEOUT_S = 60


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url):
    try:
        with urllib.request.urlopen(url + "/subjects", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def registry_url():
    binary = os.environ.get("SIXFOLD_BIN")
    if not binary:
        pytest.skip("SIXFOLD_BIN is not set: point it at the sixfold binary to run these tests")
    port = _free_port()
    env = dict(os.environ)
    env["SIXFOLD__REGISTRY__LISTEN"] = f"127.0.0.1:{port}"
    env["SIXFOLD__REGISTRY__TOPIC"] = f"_schemas_py_{uuid.uuid4().hex}"
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([binary, "registry"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    pytest.fail(f"registry did not start (exit {process.poll()}):\n{output}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _subject():
    return f"clicks-{uuid.uuid4().hex[:8]}-value"


def test_serializer_registers_and_the_wire_format_round_trips(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    topic = _subject()[: -len("-value")]
    subject = f"{topic}-value"
    serializer = AvroSerializer(client, json.dumps(CLICK_V1))  # auto.register.schemas by default
    ctx = SerializationContext(topic, MessageField.VALUE)
    click = {"code": "aZ3kP9q", "at": 1_700_000_000_000}

    data = serializer(click, ctx)

    assert data[0] == 0, "magic byte"
    schema_id = int.from_bytes(data[1:5], "big")
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, subject)
    assert json.loads(latest.schema.schema_str) == CLICK_V1
    # A fresh client (no cache) reads the writer schema by id, as a consumer elsewhere would.
    fresh = SchemaRegistryClient({"url": registry_url})
    assert json.loads(fresh.get_schema(schema_id).schema_str) == CLICK_V1
    assert AvroDeserializer(fresh)(data, ctx) == click
    # A second producer process registering the same schema gets the same id.
    assert AvroSerializer(fresh, json.dumps(CLICK_V1))(click, ctx)[1:5] == data[1:5]
    assert fresh.get_versions(subject) == [1]
    assert subject in fresh.get_subjects()
    found = fresh.lookup_schema(subject, Schema(json.dumps(CLICK_V1), "AVRO"))
    assert (found.schema_id, found.version) == (schema_id, 1)


def test_compatibility_levels_gate_evolution(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    subject = _subject()
    v1_id = client.register_schema(subject, Schema(json.dumps(CLICK_V1), "AVRO"))
    v2 = Schema(json.dumps(CLICK_V2), "AVRO")
    v3 = Schema(json.dumps(CLICK_V3), "AVRO")

    assert client.get_compatibility() == "BACKWARD"
    assert client.test_compatibility(subject, v2) is True
    assert client.test_compatibility(subject, v3) is False
    with pytest.raises(SchemaRegistryError) as rejected:
        client.register_schema(subject, v3)
    assert (rejected.value.http_status_code, rejected.value.error_code) == (409, 409)

    v2_id = client.register_schema(subject, v2)
    assert v2_id != v1_id
    assert client.get_latest_version(subject).version == 2

    with pytest.raises(SchemaRegistryError) as unset:
        client.get_compatibility(subject)
    assert unset.value.error_code == 40408
    assert client.set_compatibility(subject, "FORWARD") == {"compatibility": "FORWARD"}
    assert client.get_compatibility(subject) == "FORWARD"
    assert client.test_compatibility(subject, v3) is True


def test_data_written_with_an_old_schema_reads_with_a_new_reader(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    topic = _subject()[: -len("-value")]
    ctx = SerializationContext(topic, MessageField.VALUE)
    old = AvroSerializer(client, json.dumps(CLICK_V1))({"code": "x", "at": 1}, ctx)
    AvroSerializer(client, json.dumps(CLICK_V2))({"code": "y", "at": 2, "referrer": "r"}, ctx)

    reader = AvroDeserializer(client, json.dumps(CLICK_V2))

    assert reader(old, ctx) == {"code": "x", "at": 1, "referrer": ""}


def test_unknown_subjects_and_ids_raise_confluent_error_codes(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    with pytest.raises(SchemaRegistryError) as subject_missing:
        client.get_latest_version("no-such-subject-value")
    assert (subject_missing.value.http_status_code, subject_missing.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as id_missing:
        client.get_schema(987654)
    assert id_missing.value.error_code == 40403
