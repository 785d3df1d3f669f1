"""Role parity without a server: list splitting, the statements, and the plan."""

from __future__ import annotations

import pytest
from psycopg import sql

from handlers.pg_authority import planned
from handlers.pg_parity import RoleState, _plan, setting_values, split_guc_list
from handlers.pg_sql import grant_role, reset_role_setting, set_role_setting, set_valid_until


def _render(composed: sql.Composable) -> str:
    return composed.as_string(None)


@pytest.mark.parametrize(
    ("stored", "items"),
    [
        ("public", ["public"]),
        ('a, "B c", "$user"', ["a", "B c", "$user"]),
        ('"x""y", "a,b"', ['x"y', "a,b"]),
        ('""', [""]),
        ('"", ""', ["", ""]),
        ("  a ,\tb  ", ["a", "b"]),
        ('"x\'y;DROP ROLE z"', ["x'y;DROP ROLE z"]),
        ('"back\\slash", "ünï"', ["back\\slash", "ünï"]),
        ('" lead", "trail "', [" lead", "trail "]),
        ("", []),
        ("   ", []),
    ],
    ids=[
        "one", "quoted", "doubled-quote-and-comma", "empty-element", "two-empty", "spacing",
        "injection-text", "backslash-unicode", "edge-spaces", "empty", "blank",
    ],
)  # fmt: skip
def test_split_guc_list(stored: str, items: list[str]) -> None:
    assert split_guc_list(stored) == items


@pytest.mark.parametrize(
    "stored", ['"open', "a,", "a,,b", '"a" b', ",a"], ids=str
)  # fmt: skip
def test_split_guc_list_refuses_what_the_server_never_stores(stored: str) -> None:
    with pytest.raises(ValueError, match=r"quotes|empty|after"):
        split_guc_list(stored)


def test_only_list_quote_settings_are_split() -> None:
    assert setting_values("search_path", 'a, "B c"') == ["a", "B c"]
    assert setting_values("Search_Path", 'a, "B c"') == ["a", "B c"]
    # DateStyle takes a list but is not GUC_LIST_QUOTE: stored and re-applied as one string.
    assert setting_values("DateStyle", "iso, mdy") == ["iso, mdy"]
    assert setting_values("statement_timeout", "5s") == ["5s"]


def test_every_value_is_a_literal_and_every_name_an_identifier() -> None:
    statement = set_role_setting(
        planned('a"b'), "my db", "search_path", ["x'; DROP ROLE y; --", "B c"]
    )
    assert _render(statement) == (
        'ALTER ROLE "a""b" IN DATABASE "my db" SET "search_path" TO '
        "'x''; DROP ROLE y; --', 'B c'"
    )
    assert _render(reset_role_setting(planned("c"), None, "myapp.tenant")) == (
        'ALTER ROLE "c" RESET "myapp.tenant"'
    )
    assert _render(set_valid_until(planned("c"), "2031-01-01T00:00:00.000000Z")) == (
        "ALTER ROLE \"c\" VALID UNTIL '2031-01-01T00:00:00.000000Z'"
    )
    assert _render(grant_role("g", planned("c"), inherit=False, set_=True, with_options=True)) == (
        'GRANT "g" TO "c" WITH INHERIT FALSE, SET TRUE'
    )
    assert _render(grant_role("g", planned("c"), inherit=False, set_=True, with_options=False)) == (
        'GRANT "g" TO "c"'
    )


def _state(
    settings: dict[tuple[str | None, str], str] | None = None,
    memberships: dict[str, tuple[bool, bool]] | None = None,
    limit: int = -1,
    valid_until: str = "infinity",
) -> RoleState:
    return RoleState(settings or {}, limit, valid_until, memberships or {})


def _items(owner: RoleState, clone: RoleState) -> list[str]:
    changes = _plan(
        owner, clone, owner="app", clone=planned("app_clone"), master="m", with_options=True
    )
    return [change.item for change in changes]


def test_the_plan_copies_differences_and_removes_extras_but_not_the_clone_role() -> None:
    owner = _state(
        {(None, "search_path"): "a", (None, "role"): "elsewhere", ("db", "work_mem"): "8MB"},
        {"grp": (True, True), "app_clone": (True, True)},
        limit=5,
        valid_until="2031-01-01T00:00:00.000000Z",
    )
    clone = _state(
        {
            (None, "search_path"): "a",
            (None, "role"): "app",
            ("db", "role"): "other",
            (None, "lock_timeout"): "1s",
        },
        {"app": (True, True), "stale": (True, True)},
    )
    assert _items(owner, clone) == [
        "setting work_mem in database 'db'",
        "setting lock_timeout (not on the owner)",
        "setting role in database 'db' (not on the owner)",
        "connection limit",
        "VALID UNTIL",
        "membership in 'grp'",
        "membership in 'stale' (not the owner's)",
    ]


def test_nothing_to_do_when_the_clone_matches() -> None:
    owner = _state({(None, "search_path"): "a"}, {"grp": (False, True)}, limit=3)
    clone = _state(
        {(None, "search_path"): "a", (None, "role"): "app"},
        {"grp": (False, True), "app": (True, True)},
        limit=3,
    )
    assert _items(owner, clone) == []
    # A grant whose options differ is granted again with the owner's options.
    more = _state(dict(clone.settings), {"grp": (True, True), "app": (True, True)}, limit=3)
    assert _items(owner, more) == ["membership in 'grp'"]
