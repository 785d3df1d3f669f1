"""The command infers the strategy (tools/rotation_tools/infer.py): verify checks a mixed fleet in
one call, --strategy is an override, refused when it contradicts the secret."""

from __future__ import annotations

import json

from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed
from tests.functional.test_cli import rotation


def _versions(bed: MultiBed, arn: str) -> dict[str, list[str]]:
    return dict(bed.sm.describe_secret(SecretId=arn)["VersionIdsToStages"])


def test_verify_checks_a_mixed_fleet_without_strategy(bed: Bed, multi_tls: MultiBed) -> None:
    single, _, _ = bed.user_secret()
    pair, user, _ = multi_tls.app()
    assert multi_tls.driver(multi_tls.rotator()).rotate(pair).succeeded  # AWSPREVIOUS: user
    result = rotation("verify", single, pair, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    by_secret = {r["secret"]: r for r in json.loads(result.stdout)}
    assert by_secret[single]["strategy"] == "single-user"
    assert by_secret[pair]["strategy"] == "multi-user"
    assert {r["state"] for r in by_secret.values()} == {"valid"}
    # Multi-user checks AWSPREVIOUS too: the other user of the pair.
    assert {login["username"] for login in by_secret[pair]["logins"]} == {user, f"{user}_clone"}


def test_an_override_that_contradicts_the_pair_is_refused(multi_tls: MultiBed) -> None:
    pair, user, _ = multi_tls.app()
    assert multi_tls.driver(multi_tls.rotator()).rotate(pair).succeeded
    before = _versions(multi_tls, pair)
    result = rotation("rotate", pair, "--strategy", "single-user")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--strategy single-user contradicts" in result.stderr
    assert f"AWSPREVIOUS is {user}, the other user of {user}_clone's pair" in result.stderr
    assert "multi-user guarantee" in result.stderr
    assert _versions(multi_tls, pair) == before  # nothing changed


def test_a_secret_that_does_not_tell_asks_for_strategy(multi_tls: MultiBed) -> None:
    never_rotated, _, _ = multi_tls.app()  # a masterarn, no pair yet
    result = rotation("verify", never_rotated)
    assert result.returncode == 2
    assert "cannot tell how" in result.stderr
    assert "Pass --strategy multi-user if its rotation alternates" in result.stderr
    # Given, it is taken as it is: nothing contradicts it.
    given = rotation("verify", never_rotated, "--strategy", "multi-user")
    assert given.returncode == 0, given.stdout + given.stderr


def test_doctor_infers_single_user_without_a_masterarn(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    result = rotation("doctor", arn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {arn} for single-user rotation" in result.stdout
