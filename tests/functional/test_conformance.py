"""Our strategies pass the conformance check users run on theirs; a broken one does not."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.single_user import PostgresSingleUser
from rotation import SetRequest, SetResult
from rotation.conformance import ConformanceError, check_strategy
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def test_single_user_conforms(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    passed = check_strategy(
        lambda: PostgresSingleUser(bed.connector()), client=bed.sm, secret_id=arn,
        logs_in=bed.logs_in,
    )  # fmt: skip
    assert "testSecret refuses a pending credential that does not log in" in passed
    assert "the replaced credential is refused" in passed


def test_multi_user_conforms(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    passed = check_strategy(
        multi.strategy, client=multi.sm, secret_id=arn, logs_in=multi.logs_in,
        keeps_previous=True,
    )  # fmt: skip
    assert "the replaced credential still logs in" in passed


class ForgetfulStrategy(PostgresSingleUser):
    """A broken strategy: setSecret claims success without changing anything."""

    def set(self, request: SetRequest) -> SetResult:
        return SetResult(changed=True, via="nothing")


def test_a_broken_strategy_fails_the_check(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    factory: Any = lambda: ForgetfulStrategy(bed.connector())  # noqa: E731
    with pytest.raises(ConformanceError, match="testSecret failed"):
        check_strategy(factory, client=bed.sm, secret_id=arn, logs_in=bed.logs_in)
