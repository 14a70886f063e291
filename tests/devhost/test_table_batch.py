"""The entity-group transaction wire format, read back with the standard library's MIME parser
(the route the Azure SDK's own batch code takes), and the answers Azure documents."""

import email
import email.policy
import json
from datetime import UTC, datetime

import pytest

from devhost.store.table_batch import BatchRejectedError, encode_batch, read_batch_response

TABLE = "http://127.0.0.1:10002/devstoreaccount1/HubHistory"


def requests_of(boundary: str, body: bytes) -> list[tuple[str, dict[str, str], str]]:
    """Each operation of a batch body as (request line, headers, body)."""
    head = f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode()
    batch = email.message_from_bytes(head + body, policy=email.policy.HTTP)
    (changeset,) = batch.get_payload()
    assert changeset.get_content_type() == "multipart/mixed"
    requests = []
    for part in changeset.get_payload():
        assert part.get_content_type() == "application/http"
        assert part["Content-Transfer-Encoding"] == "binary"
        text = part.get_payload()
        head_text, _, payload = text.partition("\r\n\r\n")
        line, *header_lines = head_text.split("\r\n")
        headers = dict(h.split(": ", 1) for h in header_lines)
        requests.append((line, headers, payload.strip()))
    return requests


def test_each_operation_is_one_http_request_in_one_changeset():
    operations = [
        ("insert", {"PartitionKey": "inst", "RowKey": "h00000000", "Event": "{}"}, None),
        ("update", {"PartitionKey": "inst", "RowKey": "state", "Next": 1}, 'W/"etag-1"'),
        ("upsert", {"PartitionKey": "inst", "RowKey": "h00000001", "Event": "{}"}, None),
        ("delete", {"PartitionKey": "inst", "RowKey": "i0001-message"}, None),
    ]
    boundary, body = encode_batch(TABLE, operations)
    requests = requests_of(boundary, body)
    assert [line for line, _, _ in requests] == [
        f"POST {TABLE} HTTP/1.1",
        f"PUT {TABLE}(PartitionKey='inst',RowKey='state') HTTP/1.1",
        f"PUT {TABLE}(PartitionKey='inst',RowKey='h00000001') HTTP/1.1",
        f"DELETE {TABLE}(PartitionKey='inst',RowKey='i0001-message') HTTP/1.1",
    ]
    assert requests[0][1]["Prefer"] == "return-no-content"
    assert requests[1][1]["If-Match"] == 'W/"etag-1"'
    assert "If-Match" not in requests[2][1], "an upsert replaces whatever is there"
    assert requests[3][1]["If-Match"] == "*" and requests[3][2] == ""
    assert json.loads(requests[1][2]) == {"PartitionKey": "inst", "RowKey": "state", "Next": 1}


def test_keys_are_quoted_and_escaped_in_the_request_path():
    entity = {"PartitionKey": "O'Brien:game 1", "RowKey": "a/b"}
    boundary, body = encode_batch(TABLE, [("delete", entity, None)])
    ((line, _, _),) = requests_of(boundary, body)
    assert line == f"DELETE {TABLE}(PartitionKey='O%27%27Brien%3Agame%201',RowKey='a%2Fb') HTTP/1.1"


def test_property_types_the_service_cannot_infer_are_annotated():
    moment = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    entity = {"PartitionKey": "p", "RowKey": "r", "At": moment, "Big": 2**40, "Small": 7}
    boundary, body = encode_batch(TABLE, [("upsert", entity, None)])
    ((_, _, payload),) = requests_of(boundary, body)
    assert json.loads(payload) == {
        "PartitionKey": "p",
        "RowKey": "r",
        "At": "2026-01-02T03:04:05.006000Z",
        "At@odata.type": "Edm.DateTime",
        "Big": str(2**40),
        "Big@odata.type": "Edm.Int64",
        "Small": 7,
    }


def answer(*parts: str) -> bytes:
    lines = ["--batchresponse_1", "Content-Type: multipart/mixed; boundary=changesetresponse_1", ""]
    for part in parts:
        lines += [
            "--changesetresponse_1",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            part,
            "",
        ]
    lines += ["--changesetresponse_1--", "--batchresponse_1--", ""]
    return "\r\n".join(lines).encode()


NO_CONTENT = "HTTP/1.1 204 No Content\r\nDataServiceVersion: 1.0;\r\nETag: {}\r\n"


def test_the_etag_of_each_written_row_is_read_back_in_order():
    operations = [
        ("insert", {"PartitionKey": "p", "RowKey": "a"}, None),
        ("delete", {"PartitionKey": "p", "RowKey": "b"}, None),
        ("update", {"PartitionKey": "p", "RowKey": "state"}, "*"),
    ]
    raw = answer(
        NO_CONTENT.format('W/"1"'),
        "HTTP/1.1 204 No Content\r\nDataServiceVersion: 1.0;\r\n",
        NO_CONTENT.format('W/"2"'),
    )
    assert read_batch_response(raw, operations) == ['W/"1"', None, 'W/"2"']


def test_a_failed_operation_rejects_the_whole_transaction_with_its_status():
    operations = [("update", {"PartitionKey": "p", "RowKey": "state"}, 'W/"old"')]
    raw = answer(
        "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n"
        '{"odata.error":{"code":"UpdateConditionNotSatisfied"}}'
    )
    with pytest.raises(BatchRejectedError) as rejected:
        read_batch_response(raw, operations)
    assert rejected.value.status == 412
