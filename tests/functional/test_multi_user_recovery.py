"""Multi-user: a crash at every Secrets Manager call, first rotation (clone creation)
included, then a re-attempt with the same token."""

from __future__ import annotations

import pytest

from rotation import AWSCURRENT, AWSPREVIOUS
from tests.fix_multi import MultiBed
from tests.fix_rotation import SimulatedCrash
from tests.functional.test_crash_recovery import CrashAtCall

pytestmark = [pytest.mark.functional, pytest.mark.crash]

# A first rotation: create 4, set 2, test 1, finish 2. A second one in the same container
# reads AWSCURRENT from the cache (the first rotation wrote it): one call fewer.
CRASH_POINTS = [(1, index) for index in range(9)] + [(2, index) for index in range(8)]


@pytest.mark.parametrize("warm", [True, False], ids=["same-container", "new-container"])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(
    ("rotation", "index"), CRASH_POINTS, ids=[f"rotation{r}-call{i}" for r, i in CRASH_POINTS]
)
def test_crash_at_every_api_call_then_reattempt(
    multi: MultiBed, index: int, when: str, warm: bool, rotation: int
) -> None:
    arn, _, _ = multi.app()
    rotator = multi.rotator()
    if rotation == 2:
        multi.driver(rotator).rotate(arn)
    crash = CrashAtCall(multi.handler_client, index, when)
    driver = multi.driver(rotator)
    token = driver.begin(arn)
    with pytest.raises(SimulatedCrash):
        driver.run(arn, token)
    assert crash.fired is not None
    crash.disarm()

    assert AWSCURRENT in multi.labelled_logins(arn), "AWSCURRENT must keep working"
    again = multi.driver(rotator if warm else multi.rotator())
    pending = again.pending_token(arn)
    if pending is None:  # the crash came after AWSCURRENT moved: finished already
        assert AWSCURRENT in multi.labels(arn)[token]
    run = again.run(arn, token)
    assert run.succeeded
    labels = multi.labels(arn)
    assert labels[token] == [AWSCURRENT]
    assert multi.labelled_logins(arn) == [AWSCURRENT, AWSPREVIOUS]
