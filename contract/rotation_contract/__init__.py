"""What the rotation function and the application client agree on, in one copy.

Both sides depend on this package; it depends on neither (tests/unit/test_boundaries.py):

- :mod:`rotation_contract.errors`: the errors both raise, rooted at ``RotationError``;
- :mod:`rotation_contract.aws_calls`: what every Secrets Manager call carries (the user
  agent) and how long one attempt may take;
- :mod:`rotation_contract.aws_errors`: which AWS error is which kind of failure;
- :mod:`rotation_contract.pg`: the PostgreSQL login contract (the secret's JSON, the TLS
  floor and the RDS CA bundle, ``require_auth``, which login failure is which). The
  engine-agnostic framework (``rotation``) never imports it.

Nothing is re-exported here: each name has one import path, its module's (an application
catching a login failure imports ``rotation_contract.pg.errors.AuthenticationError``; a
strategy's author finds the shared errors re-exported by :mod:`rotation`), and importing
``rotation_contract.errors`` loads neither the AWS plumbing nor the PostgreSQL contract.
"""

__all__: list[str] = []
