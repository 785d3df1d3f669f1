"""The master changes only the pair: multi-user never resets the password of a role that
merely has the alternate's name.

The clone is recognised by its membership in the owner role. A pre-existing role called
``<user>_clone`` that is not a member of ``<user>``, or a ``<user>_clone`` secret whose
``<user>`` is not its owner, is refused with nothing changed; a clone made by AWS's
reference function (a member) is adopted.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from handlers.pg_roles import PairError
from rotation import AWSCURRENT, AWSPENDING, RotationError
from tests.fix_multi import MultiBed
from tests.fix_postgres import set_role_password

pytestmark = pytest.mark.functional


def _role_state(multi: MultiBed, role: str) -> tuple[object, ...] | None:
    """Everything a takeover could change on ``role``: its password verifier, settings and
    memberships (read as the superuser: the master cannot read pg_authid)."""
    from tests.fix_postgres import admin_connect

    with admin_connect(multi.pg) as conn:
        row = conn.execute(
            "SELECT a.rolpassword, r.rolconfig,"
            " ARRAY(SELECT o.rolname FROM pg_auth_members m JOIN pg_roles o ON o.oid = m.roleid"
            "       WHERE m.member = r.oid ORDER BY 1)"
            " FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = %s",
            (role,),
        ).fetchone()
    return tuple(row) if row else None


def _set_secret_fails(multi: MultiBed, arn: str) -> RotationError:
    rotator, token = multi.begin_and_create(arn)
    with pytest.raises(RotationError) as caught:
        rotator.handle(multi.event(arn, "setSecret", token))
    assert multi.labels(arn)[token] == [AWSPENDING]
    return caught.value


def test_a_stranger_with_the_clones_name_is_refused(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    stranger = f"{user}_clone"
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
        set_role_password(conn, stranger, "the-strangers-own-pw-1")
    multi.created.append(stranger)
    before = _role_state(multi, stranger)

    error = _set_secret_fails(multi, arn)

    assert isinstance(error, PairError)
    assert f"is not a member of {user!r}" in error.problem
    assert f'GRANT "{user}" TO "{stranger}"' in error.problem
    assert _role_state(multi, stranger) == before
    assert multi.logs_in({"username": stranger, "password": "the-strangers-own-pw-1"})
    assert multi.labelled_logins(arn) == [AWSCURRENT]


def test_an_owner_that_is_not_the_clones_owner_is_refused(multi: MultiBed) -> None:
    """A secret for ``x_clone`` whose alternate ``x`` exists but never granted itself."""
    owner, _, _ = multi.app()
    owner_name = multi.value(owner)["username"]
    owner_before = _role_state(multi, owner_name)
    arn, _, _ = multi.app(f"{owner_name}_clone")

    error = _set_secret_fails(multi, arn)

    assert isinstance(error, PairError)
    assert f"is not a member of {owner_name!r}" in error.problem
    assert _role_state(multi, owner_name) == owner_before
    assert multi.logs_in(multi.value(owner))


def test_a_clone_secret_without_its_owner_role_is_refused(multi: MultiBed) -> None:
    arn, _, _ = multi.app("lonely_clone")
    error = _set_secret_fails(multi, arn)
    assert isinstance(error, PairError)
    assert "has no owner role 'lonely'" in error.problem
    assert _role_state(multi, "lonely") is None


def test_a_deliberately_adopted_role_rotates(multi: MultiBed) -> None:
    """After the GRANT the message asks for, the same role is the clone and rotates."""
    arn, user, _ = multi.app()
    clone = f"{user}_clone"
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(clone)))
    multi.created.append(clone)
    _set_secret_fails(multi, arn)
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(user), sql.Identifier(clone)))

    run = multi.driver(multi.rotator()).rotate(arn)

    assert run.succeeded, run.steps
    assert multi.value(arn)["username"] == clone
    assert multi.logs_in(multi.value(arn))
