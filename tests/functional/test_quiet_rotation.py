"""Quiet rotation (the contract): a rotation that meets no fault logs in only with passwords
that work (no refused login in the server's log) and opens at most 2 (single-user) / 3
(multi-user) connections. Counted from the server's own log (``log_connections`` is on in
the test clusters), not from our connector; a re-attempt's cost is recorded too."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from rotation import AWSCURRENT, AWSPREVIOUS, Outcome, Step
from tests.fix_multi import MultiBed
from tests.fix_postgres import ServerLog
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

REFUSED = "password authentication failed"


def _counts(log: ServerLog) -> tuple[int, int]:
    text = log.since()
    return text.count("connection authorized:"), text.count(REFUSED)


def test_a_clean_single_user_rotation_is_quiet(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    log = ServerLog(bed.pg)
    assert bed.driver(bed.rotator()).rotate(arn).succeeded
    assert log.connections() == 2
    assert _counts(log) == (2, 0)


def test_a_clean_multi_user_rotation_is_quiet(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    for _ in range(3):  # clone created, owner back, clone again
        log = ServerLog(multi.pg)
        assert multi.driver(multi.rotator()).rotate(arn).succeeded
        assert log.connections() == 3
        assert _counts(log) == (3, 0)


def test_a_single_user_reattempt_after_the_change_costs_one_refused_login(bed: Bed) -> None:
    """After a crash that came after ALTER ROLE, AWSCURRENT is refused and AWSPENDING logs
    in: a re-attempt may cost more (one refused login), never a lockout."""
    arn, _, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    assert rotator.handle(bed.event(arn, "setSecret", token)) == Outcome.DONE
    log = ServerLog(bed.pg)
    assert bed.rotator().handle(bed.event(arn, "setSecret", token)) == Outcome.KEPT
    assert _counts(log) == (1, 1)


def test_a_multi_user_reattempt_after_the_change_is_quiet_too(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    rotator, token = multi.begin_and_create(arn)
    assert rotator.handle(multi.event(arn, "setSecret", token)) == Outcome.DONE
    log = ServerLog(multi.pg)
    assert multi.rotator().handle(multi.event(arn, "setSecret", token)) == Outcome.DONE
    assert _counts(log) == (2, 0)
    driver = multi.driver(multi.rotator())
    driver.run(arn, token, [Step.TEST, Step.FINISH])
    driver.complete(arn, token)
    assert multi.labelled_logins(arn) == [AWSCURRENT, AWSPREVIOUS]


def test_a_multi_user_reattempt_with_the_current_user_locked_out_finds_pending_in_place(
    multi: MultiBed,
) -> None:
    """Not a clean rotation: AWSCURRENT refused, so setSecret checks whether AWSPENDING is
    already in place before failing (one refused login, one more login, no master)."""
    arn, user, _ = multi.app()
    rotator, token = multi.begin_and_create(arn)
    rotator.handle(multi.event(arn, "setSecret", token))
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(user)))
    log = ServerLog(multi.pg)
    multi.connections.reset()
    assert multi.rotator().handle(multi.event(arn, "setSecret", token)) == Outcome.KEPT
    assert "rotation_master" not in multi.connections.by_user
    assert _counts(log) == (1, 1)


def test_the_verifier_set_by_multi_user_logs_in_with_scram(multi: MultiBed) -> None:
    """The verifier computed here (token-salted) is one the server accepts."""
    arn, _, _ = multi.app()
    assert multi.driver(multi.rotator()).rotate(arn).succeeded
    current = multi.value(arn)
    with psycopg.connect(**multi.pg.conninfo(current["username"], current["password"])) as conn:
        assert conn.pgconn.used_password


@pytest.mark.parametrize("password", ["pencil", "Zx9!~`[]{}|;,.<>?-_=+", "a" * 200])
def test_our_verifier_is_libpqs_with_the_same_salt(bed: Bed, password: str) -> None:
    """Recomputed from libpq's own verifier's salt and iterations, ours is byte-identical."""
    import base64

    from handlers.pg_scram import scram_sha256_verifier

    with psycopg.connect(**bed.pg.conninfo()) as conn:
        theirs = conn.pgconn.encrypt_password(password.encode(), b"someone", b"scram-sha-256")
    _, rest = theirs.decode().split("$", 1)
    iterations, salt = rest.split("$", 1)[0].split(":")
    ours = scram_sha256_verifier(password.encode(), base64.b64decode(salt), int(iterations))
    assert ours == theirs.decode()
