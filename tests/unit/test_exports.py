"""Every package's face, both ways (httpx's guard): its ``__all__`` is sorted, every name in
it exists, and every public name its ``__init__`` binds is in it.

Every package of every distribution, found on disk (``__init__.py`` under each row of
test_boundaries.PACKAGES but the test bed, which ships in none): a new package is checked
without being listed here. A package that re-exports nothing says so with an empty
``__all__``. The construct's packages are checked where ``aws_cdk`` is installed (``make cdk``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import types

import pytest

from tests.unit.test_boundaries import PACKAGES

# Bound in an __init__ without being its API: ``from __future__ import annotations`` and
# ``typing.TYPE_CHECKING``, for the imports only annotations use.
_NOT_API = frozenset({"annotations", "TYPE_CHECKING"})


def _packages() -> list[str]:
    found = []
    for top, package in PACKAGES.items():
        if top == "testbed":
            continue
        for init in sorted(package.folder.rglob("__init__.py")):
            parts = init.parent.relative_to(package.folder).parts
            found.append(".".join((top, *parts)))
    return found


PUBLIC_PACKAGES = _packages()


def isort_key(name: str) -> tuple[int, list[int | str]]:
    """ruff's RUF022 order: SCREAMING_SNAKE_CASE, then CamelCase, then the rest; a natural
    sort within each."""
    if len(name) > 1 and name.upper() == name and any(c.isalpha() for c in name):
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    natural: list[int | str] = [
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)
    ]
    return kind, natural


def _import(name: str) -> types.ModuleType:
    if name.partition(".")[0] == "rotation_cdk" and importlib.util.find_spec("aws_cdk") is None:
        pytest.skip("the construct needs aws-cdk-lib (make cdk)")
    return importlib.import_module(name)


def test_the_packages_are_found() -> None:
    """Every distribution's top-level package, and the subpackages known to have a face."""
    expected = {"rotation", "handlers", "rotation_contract", "rotation_contract.pg"}
    expected |= {"rotation_client", "rotation_client.django", "rotation_tools", "rotation_cdk"}
    assert expected <= set(PUBLIC_PACKAGES)


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_all_is_a_sorted_list_of_names_that_exist(name: str) -> None:
    module = _import(name)
    exported = module.__dict__.get("__all__")
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert all(isinstance(item, str) for item in exported)
    assert exported == sorted(exported, key=isort_key)
    assert len(exported) == len(set(exported))
    assert [item for item in exported if not hasattr(module, item)] == []


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_every_public_name_of_the_init_is_exported(name: str) -> None:
    """Submodules are attributes once imported, not exports; anything else the
    ``__init__`` binds without a leading underscore is its API."""
    module = _import(name)
    public = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attribute not in _NOT_API
    }
    assert sorted(public - set(module.__all__)) == []


@pytest.mark.parametrize(
    ("names", "ordered"),
    [
        (["b", "A", "C_D"], ["C_D", "A", "b"]),
        (["x10", "x9", "X2", "X10"], ["X2", "X10", "x9", "x10"]),
        (
            ["DEFAULT_MAX_AGE_S", "ConnectRetry", "connect"],
            ["DEFAULT_MAX_AGE_S", "ConnectRetry", "connect"],
        ),
    ],
    ids=["kinds", "natural", "client"],
)
def test_the_order_is_ruffs(names: list[str], ordered: list[str]) -> None:
    assert sorted(names, key=isort_key) == ordered
