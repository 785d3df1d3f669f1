"""Resolving a database host name within the time a step has left.

psycopg resolves the host itself (``socket.getaddrinfo``, in Python, before libpq starts)
and nothing bounds that call: a resolver that does not answer holds the step for as long as
the system's resolver configuration says (``timeout`` x ``attempts`` x name servers, plus
search domains), past the step's deadline, until Lambda kills the invocation with "Task
timed out" and no message. So the connector resolves first, in a worker thread it waits for
no longer than the time left, and hands libpq the addresses as ``hostaddr``: psycopg then
does not resolve again, and libpq still checks the server certificate against ``host``
(verify-full keeps checking the name in the secret, not the address).

A resolution that did not finish in time leaves its thread behind (``getaddrinfo`` cannot be
interrupted); it is a daemon thread, and it ends when the system resolver gives up.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence

__all__ = ["Resolver", "needs_resolution", "resolve", "system_resolver"]

#: ``(host, port) -> addresses``; raises ``OSError`` when the name does not resolve.
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The system's addresses for ``host`` (TCP), in its order, each once: what psycopg
    itself would try."""
    found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def needs_resolution(host: str) -> bool:
    """Whether ``host`` is a name to resolve: not an address, not a Unix socket directory."""
    if not host or host.startswith("/") or host[1:2] == ":":  # a path, or a Windows one
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def resolve(
    host: str, port: int, *, timeout_s: float, resolver: Resolver = system_resolver
) -> list[str]:
    """``host``'s addresses, or an error within ``timeout_s`` seconds.

    Raises
    ------
    TimeoutError
        The resolver did not answer within ``timeout_s``.
    OSError
        The resolver's own failure (``socket.gaierror``: no such name, no DNS server), or
        an answer with no address.
    """
    done = threading.Event()
    answer: list[str] = []
    failure: list[Exception] = []

    def run() -> None:
        try:
            answer.extend(resolver(host, port))
        except Exception as exc:  # handed to the waiting thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(timeout_s, 0.0)):
        raise TimeoutError(f"no answer within {timeout_s:.1f} s")
    if failure:
        raise failure[0]
    if not answer:
        raise OSError(f"no address for {host}")
    return answer
