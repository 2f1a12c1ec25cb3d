"""LeanTableClient's transactions (shared/storage/lean.py, every app Table client) against
the SDK's TableClient on Azurite: the same request body byte for byte (boundaries and dates
aside), the same stored rows, the same errors; and an answer whose echoed entity looks like a
failed part is not taken for one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.data.tables import EdmType, TableClient, TableTransactionError, UpdateMode

from shared.storage.clients import StorageClients
from shared.storage.lean import LeanTableClient, first_failure, parts_of

KEYS = ["plain", "it's", "100%|~é", "a b+c&d=e", "emoji 😀", "'quoted''"]


@pytest.fixture
def tables(azurite_conn: str) -> Iterator[tuple[TableClient, TableClient]]:
    """Two empty tables: one the SDK's client writes, one the app's (LeanTableClient)."""
    sdk = TableClient.from_connection_string(azurite_conn, f"sdk{uuid.uuid4().hex[:10]}")
    lean = StorageClients(azurite_conn).table(f"lean{uuid.uuid4().hex[:10]}")
    assert type(sdk) is TableClient and isinstance(lean, LeanTableClient)
    pair = (sdk, lean)
    for table in pair:
        table.create_table()
    yield pair
    for table in pair:
        table.delete_table()


def rows(table: TableClient) -> list[dict[str, Any]]:
    return sorted(({**e} for e in table.query_entities("")), key=lambda e: (e["PartitionKey"], e["RowKey"]))


def inserts(pk: str) -> list[Any]:
    typed = {"I": 5, "B": True, "F": 1.5, "D": datetime(2026, 1, 1, tzinfo=UTC), "S": 'x\'y\n"z"', "N": None}
    return [("create", {"PartitionKey": pk, "RowKey": key, **typed}) for key in KEYS]


def changes(pk: str, table: TableClient) -> list[list[Any]]:
    """After `inserts`: transactions of every other operation kind the adapters send."""
    ops: list[list[Any]] = []
    ops.append([("upsert", {"PartitionKey": pk, "RowKey": KEYS[0], "V": 1}, {"mode": UpdateMode.REPLACE})])
    ops.append([("upsert", {"PartitionKey": pk, "RowKey": KEYS[1], "W": 2})])  # merge
    ops.append([("update", {"PartitionKey": pk, "RowKey": KEYS[2], "U": 3}, {"mode": UpdateMode.MERGE})])
    etag = table.get_entity(pk, KEYS[3]).metadata["etag"]
    ops.append(
        [
            (
                "update",
                {"PartitionKey": pk, "RowKey": KEYS[3], "E": 4},
                {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
            ),
            ("delete", {"PartitionKey": pk, "RowKey": KEYS[4]}),
        ]
    )
    return ops


def test_same_rows_as_the_sdk(tables: tuple[TableClient, TableClient]) -> None:
    sdk, lean = tables
    for table, send in ((sdk, sdk.submit_transaction), (lean, lean.submit_transaction)):
        send(inserts("p"))
        for ops in changes("p", table):
            send(ops)
    assert rows(lean) == rows(sdk)
    assert len(rows(lean)) == len(KEYS) - 1


def test_same_body_as_the_sdk(tables: tuple[TableClient, TableClient]) -> None:
    """What goes on the wire, captured from the pipeline, is the SDK's own body."""
    sdk, lean = tables
    sent: list[bytes] = []

    def capture(response: Any) -> None:
        request = response.http_request
        if request.url.endswith("$batch"):
            sent.append(request.body if isinstance(request.body, bytes) else request.body.encode())

    ops = inserts("p")
    sdk.submit_transaction(ops, raw_response_hook=capture)
    lean.submit_transaction(ops, raw_response_hook=capture)

    def normal(body: bytes, table: TableClient) -> str:
        text = body.decode()
        text = re.sub(r"(batch|changeset)_[0-9a-f-]{36}", r"\1", text)
        text = re.sub(r"(x-ms-date|Date): [^\r]+", r"\1: now", text)
        # Once Sentry is initialised in the process (an earlier test), its http.client patch adds
        # its trace headers to each part the SDK serialises through http.client; parts written
        # directly carry none, which Azure ignores either way.
        text = re.sub(r"(sentry-trace|baggage): [^\r]+\r\n", "", text)
        return text.replace(table.table_name, "TABLE")

    assert len(sent) == 2
    assert normal(sent[1], lean) == normal(sent[0], sdk)


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param(
            lambda pk: [
                ("create", {"PartitionKey": pk, "RowKey": "new"}),
                ("create", {"PartitionKey": pk, "RowKey": "old"}),
            ],
            id="insert-exists",
        ),
        pytest.param(lambda pk: [("delete", {"PartitionKey": pk, "RowKey": "absent"})], id="delete-missing"),
        pytest.param(
            lambda pk: [
                (
                    "update",
                    {"PartitionKey": pk, "RowKey": "old"},
                    {
                        "mode": UpdateMode.REPLACE,
                        "etag": "W/\"datetime'2000-01-01T00%3A00%3A00Z'\"",
                        "match_condition": MatchConditions.IfNotModified,
                    },
                )
            ],
            id="if-match-lost",
        ),
        pytest.param(lambda pk: [("create", {"PartitionKey": pk, "RowKey": "bad/key"})], id="bad-key"),
    ],
)
def test_same_errors_as_the_sdk(tables: tuple[TableClient, TableClient], failing: Any) -> None:
    sdk, lean = tables
    errors = []
    for table, send in ((sdk, sdk.submit_transaction), (lean, lean.submit_transaction)):
        table.create_entity({"PartitionKey": "p", "RowKey": "old"})
        with pytest.raises(TableTransactionError) as caught:
            send(failing("p"))
        errors.append(
            (type(caught.value), caught.value.error_code, caught.value.status_code, caught.value.index)
        )
        assert [e["RowKey"] for e in table.query_entities("")] == ["old"]  # nothing of it was written
    assert errors[1] == errors[0]
    assert errors[0][1] is not None


def test_a_missing_table_is_reported_as_the_sdk_does(azurite_conn: str) -> None:
    sdk = TableClient.from_connection_string(azurite_conn, "nosuchtable")
    caught = []
    for send in (
        sdk.submit_transaction,
        StorageClients(azurite_conn).table("nosuchtable").submit_transaction,
    ):
        with pytest.raises(TableTransactionError) as error:
            send([("create", {"PartitionKey": "p", "RowKey": "r"})])
        caught.append((type(error.value), error.value.error_code))
    assert caught[1] == caught[0]


def test_etags_and_nothing_sent_for_no_operations(tables: tuple[TableClient, TableClient]) -> None:
    _, lean = tables
    assert lean.submit_transaction([]) == []
    [first, second] = lean.submit_transaction(inserts("p")[:2])
    assert first["etag"] == lean.get_entity("p", KEYS[0]).metadata["etag"]
    assert second["etag"] == lean.get_entity("p", KEYS[1]).metadata["etag"]


class Answer:
    """A batch answer as a server would write it."""

    def __init__(self, text: str, boundary: str) -> None:
        self.parts = parts_of(text, f"multipart/mixed; boundary={boundary}")


def answer(*parts: str) -> Answer:
    head = "--changesetresponse_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary"
    inner = "\r\n".join(f"{head}\r\n\r\n{p}" for p in parts)
    text = (
        "--batchresponse_y\r\nContent-Type: multipart/mixed; boundary=changesetresponse_x\r\n\r\n"
        f"{inner}\r\n--changesetresponse_x--\r\n--batchresponse_y--\r\n"
    )
    return Answer(text, "batchresponse_y")


def test_an_echoed_entity_is_not_a_status() -> None:
    """Azure echoes an inserted entity in its 201 part: text that looks like a failed part is data."""
    entity = '{"Description":"\\r\\nHTTP/1.1 409 Conflict\\r\\n"}'
    echoed = f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\r\n{entity}\r\n"
    assert first_failure(answer(echoed, "HTTP/1.1 204 No Content\r\n\r\n").parts) is None


def test_the_failed_part_is_decoded() -> None:
    body = '{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US","value":"3:exists"}}}'
    part = f"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
    failed = first_failure(answer(part).parts)
    assert failed is not None
    assert (failed.error_code, failed.status_code, failed.index) == ("EntityAlreadyExists", 409, 3)


def test_a_part_outside_a_changeset_is_read() -> None:
    """A malformed transaction is answered with one part directly under the batch boundary."""
    text = (
        "--batchresponse_y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
        '{"odata.error":{"code":"InvalidInput","message":{"value":"0:bad"}}}\r\n'
        "--batchresponse_y--\r\n"
    )
    parts = parts_of(text, "multipart/mixed; boundary=batchresponse_y")
    assert len(parts) == 1
    failed = first_failure(parts)
    assert failed is not None and failed.error_code == "InvalidInput" and failed.status_code == 400


def test_an_insert_is_not_echoed_back_and_still_gives_its_etag(
    tables: tuple[TableClient, TableClient],
) -> None:
    _, lean = tables
    written = lean.create_entity({"PartitionKey": "p", "RowKey": "r", "Text": "x" * 1000})
    assert written.get("preference_applied") == "return-no-content" and written.get("content") is None
    assert written["etag"] == lean.get_entity("p", "r").metadata["etag"]


def test_query_rows_returns_what_query_entities_returns(tables: tuple[TableClient, TableClient]) -> None:
    """Every type, two partitions, pages of 2 (continuations), a filter with parameters, a select."""
    _, lean = tables
    big, guid = 2**40, uuid.UUID("12345678-1234-5678-1234-567812345678")
    for pk in ("p", "q'r"):
        lean.submit_transaction(inserts(pk))
        typed = {"L": (big, EdmType.INT64), "G": guid, "Bin": b"\x00\xff"}
        lean.create_entity({"PartitionKey": pk, "RowKey": "typed", **typed})
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        ("PartitionKey eq @pk and RowKey ge @low", {"parameters": {"pk": "q'r", "low": "a"}}),
        ("", {"select": ["RowKey", "I", "L"], "results_per_page": 2}),
        ("PartitionKey eq 'nothing'", {}),
    ]
    for query, options in cases:
        sdk = list(lean.query_entities(query, **options))
        mine = list(lean.query_rows(query, **options))
        assert [dict(e) for e in mine] == [dict(e) for e in sdk], (query, options)
        assert [e.metadata for e in mine] == [e.metadata for e in sdk]
    assert len(list(lean.query_rows("", results_per_page=2))) == 2 * (len(KEYS) + 1)


def test_query_rows_of_a_missing_table_fail_as_the_sdks_do(azurite_conn: str) -> None:
    lean = StorageClients(azurite_conn).table("nosuchtable")
    caught = []
    for query in (lean.query_entities, lean.query_rows):
        with pytest.raises(Exception) as error:
            list(query("PartitionKey eq 'p'"))
        caught.append((type(error.value), getattr(error.value, "error_code", None)))
    assert caught[1] == caught[0]
