"""rotation_client's view of one secret's labels, without I/O: single flight, pacing and
the negative cache of forced reads, on a fake clock. (Counted against moto and a real
server in tests/functional/test_client_herd.py.)"""

from __future__ import annotations

import threading

import pytest

import rotation_client
from rotation.errors import SecretsManagerError
from rotation_client import ConnectRetry, RefreshPolicy
from rotation_client._versions import LabelledVersions
from tests.fix_clock import FakeClock


class ScriptedSource:
    """A SecretSource whose values the test sets; counts reads, can hold them or fail."""

    def __init__(self, values: dict[str, str | None]) -> None:
        self.values = values
        self.reads: list[tuple[str, bool]] = []
        self.fail: str | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None:
        self.reads.append((stage, force))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        if self.fail is not None:
            raise SecretsManagerError(self.fail)
        return self.values.get(stage)


def _versions(source: ScriptedSource, clock: FakeClock) -> LabelledVersions:
    return LabelledVersions("app/db", source, clock=clock, policy=RefreshPolicy())


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_present() -> None:
    assert rotation_client.__all__ == sorted(rotation_client.__all__, key=_isort_key)
    for name in rotation_client.__all__:
        assert hasattr(rotation_client, name), name


def test_concurrent_forced_reads_wait_for_one() -> None:
    source = ScriptedSource({"AWSCURRENT": "v2"})
    source.gate = threading.Event()
    versions = _versions(source, FakeClock())
    results: list[str | None] = []
    first = threading.Thread(target=lambda: results.append(versions.refresh("AWSCURRENT", {"v1"})))
    first.start()
    assert source.entered.wait(timeout=30)  # the first one is asking; the others queue
    others = [
        threading.Thread(target=lambda: results.append(versions.refresh("AWSCURRENT", {"v1"})))
        for _ in range(9)
    ]
    for thread in others:
        thread.start()
    source.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert results == ["v2"] * 10
    assert source.reads == [("AWSCURRENT", True)]


def test_forced_reads_are_paced_while_they_bring_nothing_new() -> None:
    source = ScriptedSource({"AWSCURRENT": "v1"})
    clock = FakeClock()
    versions = _versions(source, clock)
    versions.read("AWSCURRENT")
    forced_at = []
    for _ in range(280):  # 70 s in quarters (exact in binary floating point)
        before = len(source.reads)
        versions.refresh("AWSCURRENT", {"v1"})
        if len(source.reads) > before:
            forced_at.append(round(clock() - 1000.0, 1))
        clock.advance(0.25)
    assert forced_at == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]


def test_a_new_value_resets_the_pace() -> None:
    source = ScriptedSource({"AWSCURRENT": "v1"})
    clock = FakeClock()
    versions = _versions(source, clock)
    versions.read("AWSCURRENT")
    for _ in range(3):  # at 0, 1, 3 s: nothing new; the next may come 4 s later
        versions.refresh("AWSCURRENT", {"v1"})
        clock.advance(2)
    source.values["AWSCURRENT"] = "v2"
    clock.advance(2)
    assert versions.refresh("AWSCURRENT", {"v1"}) == "v2"
    source.values["AWSCURRENT"] = "v3"
    clock.advance(RefreshPolicy().min_interval_s)
    assert versions.refresh("AWSCURRENT", {"v2"}) == "v3"


def test_a_value_another_thread_brought_is_given_without_asking() -> None:
    source = ScriptedSource({"AWSCURRENT": "v2"})
    versions = _versions(source, FakeClock())
    versions.read("AWSCURRENT")
    reads = len(source.reads)
    # This caller was refused with v1 (read before the other thread's refresh): v2 is new
    # to it, whatever the pace.
    assert versions.refresh("AWSCURRENT", {"v1"}) == "v2"
    assert len(source.reads) == reads


def test_a_failed_read_is_raised_again_without_asking_for_a_moment() -> None:
    source = ScriptedSource({"AWSCURRENT": "v1"})
    source.fail = "reading AWSCURRENT of app/db failed: ThrottlingException: Rate exceeded"
    clock = FakeClock()
    versions = _versions(source, clock)
    with pytest.raises(SecretsManagerError, match=r"Rate exceeded$"):
        versions.read("AWSCURRENT")
    for _ in range(5):
        with pytest.raises(SecretsManagerError, match=r"Rate exceeded \(a moment ago"):
            versions.read("AWSCURRENT")
    assert len(source.reads) == 1
    clock.advance(RefreshPolicy().min_interval_s)
    source.fail = None
    assert versions.read("AWSCURRENT") == "v1"
    assert len(source.reads) == 2


@pytest.mark.parametrize(
    ("round_number", "expected"),
    [(2, 0.2), (3, 0.4), (4, 0.8), (5, 1.6), (6, 2.0), (9, 2.0)],
)
def test_connect_backoff_doubles_up_to_its_cap(round_number: int, expected: float) -> None:
    assert ConnectRetry(jitter=0.0).wait_before(round_number) == pytest.approx(expected)


def test_connect_backoff_jitter_stretches_the_wait() -> None:
    assert ConnectRetry(jitter=0.25, rng=lambda: 1.0).wait_before(2) == pytest.approx(0.25)
