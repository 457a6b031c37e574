"""Property: rendering any valid item and parsing the text back gives the same item."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsprint.backlog import parse_item_text, render_item
from agentsprint.backlog.render import with_status
from agentsprint.domain import EPIC_NAME, Budget, Gate, GateKind, Item, ItemType, Priority, Status

texts = st.text(min_size=1, max_size=40)
ids = st.builds(lambda prefix, n: f"{prefix}-{n}", st.from_regex(r"[A-Z][A-Z0-9]{0,3}", fullmatch=True),
                st.integers(min_value=0, max_value=10**9))
durations = st.builds(lambda n, unit: f"{n}{unit}", st.integers(min_value=0, max_value=10**6),
                      st.sampled_from(["", "s", "m", "h", "d", "ms"]))
gates = st.one_of(
    st.just(Gate(kind=GateKind.SECRETS, name="secrets")),
    st.just(Gate(kind=GateKind.SECURITY, name="security", value="agent")),
    st.just(Gate(kind=GateKind.REVIEW, name="review", value="human")),
    st.builds(lambda name, command: Gate(kind=GateKind.COMMAND, name=name, command=command),
              st.from_regex(r"[A-Za-z][\w.-]{0,12}", fullmatch=True).filter(
                  lambda n: n not in ("secrets", "security", "review")),
              texts.map(str.strip).filter(bool)),
)
budgets = st.builds(
    Budget,
    tokens=st.none() | st.integers(min_value=0, max_value=10**12),
    usd=st.none() | st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
    time=st.none() | durations,
    rounds=st.none() | st.integers(min_value=0, max_value=100),
)
items = st.builds(
    Item,
    id=ids,
    title=texts,
    type=st.sampled_from(ItemType),
    priority=st.sampled_from(Priority),
    value=st.integers(min_value=0, max_value=10**6),
    status=st.sampled_from([Status.TODO, Status.DONE, Status.DROPPED]),
    epic=st.none() | st.from_regex(EPIC_NAME, fullmatch=True),  # a plain name: anything else is invalid
    source=st.none() | st.text(min_size=1, max_size=60).filter(lambda s: "\r" not in s and "\n" not in s),
    labels=st.lists(st.text(max_size=12), max_size=3),
    depends_on=st.lists(ids, max_size=3),
    scope=st.lists(st.text(max_size=20), max_size=3),
    budget=budgets,
    dod=st.lists(gates, max_size=5),
    body=st.text(max_size=200),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items)
def test_render_then_parse_gives_the_same_item(item: Item) -> None:
    assert parse_item_text(render_item(item)) == item


@settings(max_examples=100, deadline=None)
@given(items, st.sampled_from([Status.TODO, Status.DONE, Status.DROPPED]))
def test_status_rewrite_changes_only_the_status(item: Item, status: Status) -> None:
    rewritten = parse_item_text(with_status(render_item(item), status))
    assert rewritten == item.model_copy(update={"status": status})
