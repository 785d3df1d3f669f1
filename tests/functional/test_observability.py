"""Every log line carries the secret, step, token and strategy; metrics go out as EMF."""

from __future__ import annotations

import io
import json

import pytest

from rotation.observability import METRICS_NAMESPACE, logger
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def test_every_line_names_the_secret_step_token_and_strategy(
    bed: Bed, json_log: io.StringIO
) -> None:
    arn, _, _ = bed.user_secret()
    run = bed.driver(bed.rotator()).rotate(arn)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert len(lines) >= 8
    for line in lines:
        assert line["secret_arn"] == arn
        assert line["token"] == run.token
        assert line["strategy"] == "postgres-single-user"
        assert line["step"] in {"createSecret", "setSecret", "testSecret", "finishSecret"}
    finished = [line for line in lines if line["message"] == "rotation step finished"]
    assert [line["step"] for line in finished] == [
        "createSecret", "setSecret", "testSecret", "finishSecret",
    ]  # fmt: skip


def test_keys_do_not_leak_into_the_next_invocation(bed: Bed, json_log: io.StringIO) -> None:
    arn, _, _ = bed.user_secret()
    bed.driver(bed.rotator()).rotate(arn)
    logger.info("outside any invocation")
    last = json.loads(json_log.getvalue().splitlines()[-1])
    assert "secret_arn" not in last
    assert "step" not in last


def test_each_step_emits_duration_and_outcome_metrics(
    bed: Bed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    arn, _, _ = bed.user_secret()
    bed.driver(bed.rotator()).rotate(arn)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(emf) == 4
    for document in emf:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
        assert {"Step", "Strategy"} <= set(directive["Dimensions"][0])
        assert document["StepSucceeded"] == [1.0]
        assert document["StepDuration"][0] > 0
    assert [d["Step"] for d in emf] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
