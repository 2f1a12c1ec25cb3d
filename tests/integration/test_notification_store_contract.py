"""One contract for every NotificationStore: the in-memory fake and the Table adapter on Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.models import (
    NOTIFICATION_MESSAGE_MAX,
    NOTIFICATION_TITLE_MAX,
    Notification,
    NotificationKind,
)
from shared.ports import MAX_OWNER_KEY, NotificationStore
from shared.storage.clients import StorageClients, round_trips
from shared.storage.keys import STAFF_NOTICES, notification_partition, notification_row
from shared.storage.memory import InMemoryNotificationStore
from shared.storage.tables.notifications import TableNotificationStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "table"])
def store(request: pytest.FixtureRequest) -> Iterator[NotificationStore]:
    if request.param == "memory":
        yield InMemoryNotificationStore()
        return
    # A table of its own per test: the staff partition is one for everybody, and the assertions
    # below count exactly what is in it.
    table = StorageClients(request.getfixturevalue("azurite_conn")).table(f"n{uuid.uuid4().hex[:20]}")
    table.create_table()
    try:
        yield TableNotificationStore(table)
    finally:
        table.delete_table()


def notice(
    n: int, user: str | None = "alice", at: datetime = NOW, title: str = "", message: str = ""
) -> Notification:
    return Notification(
        id=f"n-{n}",
        user=user,
        kind=NotificationKind.FOLLOWUP if user else NotificationKind.REOPENED,
        ticket_id=n,
        title=title or f"Notice {n}",
        message=message or f"Message {n}",
        created_at=at,
        links={"ticket": f"/api/tickets/{n}/"},
    )


def ids(store: NotificationStore, user: str | None, limit: int = 100) -> list[str]:
    return [n.id for n in store.list(user, limit, None).results]


def test_a_notice_reads_back_equal_and_adding_it_again_changes_nothing(store: NotificationStore) -> None:
    first = notice(1)
    store.add(first)
    store.add(first)
    store.add(first.model_copy())
    page = store.list("alice", 10, None)
    assert page.results == [first] and page.next_cursor is None


def test_concurrent_adds_of_one_notification_store_it_once(store: NotificationStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: store.add(notice(7)), range(16)))
    assert ids(store, "alice") == ["n-7"]


def test_newest_first_then_by_id(store: NotificationStore) -> None:
    times = [NOW + timedelta(minutes=m) for m in (5, 1, 9, 3)]
    for n, at in enumerate(times):
        store.add(notice(n, at=at))
    store.add(notice(9, at=times[2]))  # the same time as n-2: ties are ordered by id
    store.add(notice(4, at=NOW + timedelta(microseconds=1)))  # a microsecond apart still counts
    store.add(notice(5, at=NOW))
    assert ids(store, "alice") == ["n-2", "n-9", "n-0", "n-3", "n-1", "n-4", "n-5"]


def test_a_naive_time_is_read_as_utc(store: NotificationStore) -> None:
    store.add(notice(1, at=NOW.replace(tzinfo=None)))
    store.add(notice(1, at=NOW))  # the same instant: the same row
    assert ids(store, "alice") == ["n-1"]


@pytest.mark.parametrize("limit", [1, 3, 7, 50])
def test_cursor_pages_cover_everything_once_in_order(store: NotificationStore, limit: int) -> None:
    for n in range(23):
        store.add(notice(n, at=NOW + timedelta(seconds=n % 5)))  # many ties
    everything = ids(store, "alice")
    assert len(everything) == 23
    seen: list[str] = []
    cursor = None
    for _ in range(30):
        page = store.list("alice", limit, cursor)
        assert len(page.results) <= limit
        seen += [n.id for n in page.results]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything  # no gap, no repeat, newest first
    assert len(store.list("alice", 23, None).results) == 23
    assert store.list("alice", 23, None).next_cursor is None  # an exact last page says so


def test_a_newer_notice_added_while_paging_shows_on_top_not_mid_way(store: NotificationStore) -> None:
    for n in range(6):
        store.add(notice(n, at=NOW + timedelta(seconds=n)))
    first = store.list("alice", 3, None)
    store.add(notice(99, at=NOW + timedelta(hours=1)))
    rest = store.list("alice", 10, first.next_cursor)
    assert [n.id for n in first.results + rest.results] == [f"n-{n}" for n in (5, 4, 3, 2, 1, 0)]
    assert ids(store, "alice")[0] == "n-99"


def test_users_read_only_their_own(store: NotificationStore) -> None:
    store.add(notice(1, user="alice"))
    store.add(notice(2, user="bob"))
    store.add(notice(3, user="Alice"))  # ids are case-sensitive
    assert ids(store, "alice") == ["n-1"]
    assert ids(store, "bob") == ["n-2"]
    assert ids(store, "Alice") == ["n-3"]
    assert ids(store, "carol") == []


def test_user_ids_that_look_alike_once_encoded_stay_apart(store: NotificationStore) -> None:
    # "/" and "#" cannot be in a Table key, so they are percent-encoded; so is a "%" itself.
    users = ["a/b", "a%2Fb", "a#b", "a%23b", "ümlaut", "%C3%BCmlaut", "a'b", "a''b", "", " "]
    for n, user in enumerate(users):
        store.add(notice(n, user=user))
    for n, user in enumerate(users):
        assert ids(store, user) == [f"n-{n}"], user


@pytest.mark.parametrize("user", ["staff", "~staff", "[staff]", "%5Bstaff%5D", "", "None", STAFF_NOTICES])
def test_no_user_id_reads_or_writes_the_staff_notices(store: NotificationStore, user: str) -> None:
    store.add(notice(1, user=None))
    store.add(notice(2, user=user))
    assert notification_partition(user) != STAFF_NOTICES
    assert ids(store, user) == ["n-2"]
    assert ids(store, None) == ["n-1"]


def test_the_longest_title_and_message_are_stored_whole(store: NotificationStore) -> None:
    # The worst case for storage: characters that take 2 UTF-16 units, and control characters.
    title = "😀" * NOTIFICATION_TITLE_MAX
    message = ("\x01😀\"\\'" * NOTIFICATION_MESSAGE_MAX)[:NOTIFICATION_MESSAGE_MAX]
    links = {f"l{n}": "/" + "x" * 999 for n in range(5)}
    longest = notice(1, title=title, message=message).model_dump()
    big = Notification.model_validate({**longest, "links": links})
    store.add(big)
    [back] = store.list("alice", 1, None).results
    assert back == big


def test_a_longer_title_or_message_is_refused_when_built_naming_the_field() -> None:
    for field, value in (
        ("title", "x" * (NOTIFICATION_TITLE_MAX + 1)),
        ("title", ""),
        ("message", "x" * (NOTIFICATION_MESSAGE_MAX + 1)),
        ("message", "\ud800"),
        ("links", {"ticket": "x" * 1001}),
        ("links", {"ticket": "has a space"}),
        ("links", {f"l{n}": "/" for n in range(6)}),
        ("id", "followup/1"),
    ):
        with pytest.raises(ValidationError) as refused:
            Notification.model_validate({**notice(1).model_dump(), field: value})
        assert refused.value.errors()[0]["loc"][0] == field


def test_a_recipient_whose_id_cannot_key_a_partition_is_refused(store: NotificationStore) -> None:
    with pytest.raises(ValueError, match="at most"):
        store.add(notice(1, user="/" * MAX_OWNER_KEY))  # 3 characters each once encoded
    store.add(notice(2, user="x" * MAX_OWNER_KEY))  # fits exactly
    assert ids(store, "x" * MAX_OWNER_KEY) == ["n-2"]
    assert ids(store, "/" * MAX_OWNER_KEY) == []


def test_a_page_is_one_round_trip_and_an_add_one(azurite_conn: str) -> None:
    table = StorageClients(azurite_conn).table(f"n{uuid.uuid4().hex[:20]}")
    table.create_table()
    try:
        store = TableNotificationStore(table)
        for n in range(30):
            store.add(notice(n, at=NOW + timedelta(seconds=n)))
        before = round_trips()
        store.add(notice(99))
        store.add(notice(99))  # already there: still one request
        page = store.list("alice", 20, None)
        store.list("alice", 20, page.next_cursor)
        assert round_trips() - before == 4
    finally:
        table.delete_table()


def key(n: Notification) -> str:
    return notification_row(n.created_at, n.id)


def test_mark_read_marks_only_the_recipients_own_notification(store: NotificationStore) -> None:
    mine, bobs = notice(1), notice(2, user="bob")
    store.add(mine)
    store.add(bobs)
    assert store.mark_read("alice", key(bobs)) is False  # another's key, asked in one's own name
    assert store.mark_read("alice", key(notice(3))) is False  # no such notification
    assert [n.read for n in store.list("bob", 10, None).results] == [False]
    assert store.mark_read("alice", key(mine)) is True
    assert store.mark_read("alice", key(mine)) is True  # again: still read, no error
    assert [n.read for n in store.list("alice", 10, None).results] == [True]
    assert store.list("alice", 10, None).results[0] == mine.model_copy(update={"read": True})


def test_adding_a_notification_again_keeps_it_read(store: NotificationStore) -> None:
    first = notice(1)
    store.add(first)
    store.mark_read("alice", key(first))
    store.add(first)  # a retried cause writes it again
    assert [n.read for n in store.list("alice", 10, None).results] == [True]


def test_mark_all_read_marks_the_newest_page_and_counts_the_unread(store: NotificationStore) -> None:
    notices = [notice(n, at=NOW + timedelta(minutes=n)) for n in range(5)]
    for n in notices:
        store.add(n)
    store.add(notice(9, user="bob"))
    store.mark_read("alice", key(notices[4]))
    assert store.mark_all_read("alice", 3) == 2  # the newest three, one of them already read
    assert [n.read for n in store.list("alice", 10, None).results] == [True, True, True, False, False]
    assert store.mark_all_read("alice", 100) == 2
    assert store.mark_all_read("alice", 100) == 0
    assert all(n.read for n in store.list("alice", 10, None).results)
    assert [n.read for n in store.list("bob", 10, None).results] == [False]
    assert store.mark_all_read("nobody", 100) == 0


def test_mark_all_read_of_a_full_page_is_one_batch(store: NotificationStore) -> None:
    for n in range(100):
        store.add(notice(n, at=NOW + timedelta(seconds=n)))
    assert store.mark_all_read("alice", 100) == 100
    assert all(n.read for n in store.list("alice", 100, None).results)


def test_marking_read_costs_one_request_and_read_all_two(azurite_conn: str) -> None:
    table = StorageClients(azurite_conn).table(f"n{uuid.uuid4().hex[:20]}")
    table.create_table()
    try:
        store = TableNotificationStore(table)
        for n in range(150):
            store.add(notice(n, at=NOW + timedelta(seconds=n)))
        before = round_trips()
        assert store.mark_read("alice", key(notice(3, at=NOW + timedelta(seconds=3)))) is True
        assert store.mark_read("alice", key(notice(999))) is False
        assert round_trips() - before == 2
        before = round_trips()
        assert store.mark_all_read("alice", 100) == 100  # of 150: the newest 100, bounded
        assert round_trips() - before == 2
        with pytest.raises(ValueError):
            store.mark_all_read("alice", 101)  # more than one batch holds
        unread = [n.id for n in store.list("alice", 150, None).results if not n.read]
        assert unread == [f"n-{n}" for n in range(49, -1, -1) if n != 3]
    finally:
        table.delete_table()
