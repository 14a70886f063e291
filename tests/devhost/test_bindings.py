"""Values set on output bindings, encoded by azure.functions' converters as the worker does."""

import typing

import azure.functions as func

from devhost.app.binding_expressions import BindingExpressionError, resolve
from devhost.app.binding_spec import Binding
from devhost.app.bindings import _queue_bodies, encode

QUEUE = Binding.from_dict({"name": "out", "type": "queue", "direction": "out"})
BLOB = Binding.from_dict({"name": "out", "type": "blob", "direction": "out"})
TABLE = Binding.from_dict({"name": "out", "type": "table", "direction": "out"})


def test_a_list_set_on_a_queue_output_is_one_message_per_item():
    datum = encode(QUEUE, ["a", func.QueueMessage(body="b")], func.Out[typing.List[str]])  # noqa: UP006
    assert _queue_bodies(datum) == ["a", "b"]


def test_a_string_or_bytes_is_one_message():
    assert _queue_bodies(encode(QUEUE, "hello", func.Out[str])) == ["hello"]
    assert _queue_bodies(encode(QUEUE, b"raw", func.Out[bytes])) == [b"raw"]


def test_blob_outputs_take_text_bytes_or_a_readable():
    assert encode(BLOB, "text", None).value == "text"
    assert encode(BLOB, bytearray(b"xy"), None).value == b"xy"
    stream = func.blob.InputStream(data=b"streamed")
    assert encode(BLOB, stream, None).value == b"streamed"


def test_table_has_no_converter_and_gets_the_workers_generic_one():
    assert encode(TABLE, '{"PartitionKey": "p"}', None).type == "string"
    assert encode(TABLE, {"PartitionKey": "p"}, None).type == "json"


def test_binding_expressions_take_trigger_data_settings_and_system_values(monkeypatch):
    monkeypatch.setenv("CONTAINER", "reports")
    path = resolve("%CONTAINER%/{Name}-{rand-guid}.txt", {"name": "map"})
    assert path.startswith("reports/map-") and len(path) == len("reports/map-") + 36 + 4
    assert resolve("{query.id}", {"query": {"ID": "7"}}) == "7"
    try:
        resolve("{missing}", {})
    except BindingExpressionError as err:
        assert "{missing}" in str(err)
    else:
        raise AssertionError("an unknown expression must not become an empty string")
