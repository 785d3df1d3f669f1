"""The PostgreSQL side of the outside contract, shared by the rotation handlers and by
applications (:mod:`rotation_client`): the secret's JSON, TLS modes and trust roots, the
libpq settings we honour, and how a failed login is classified. Pure Python: importing it
needs no database driver.
"""

# Nothing re-exported: the handlers and the client each import the modules they use
# (errors, login, resolve, secret, settings, tls), and importing this package loads none.
__all__: list[str] = []
