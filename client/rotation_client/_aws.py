"""The boto3 client an application reads its secrets through, and every read bounded by the
caller's time.

One ``connect()`` has a budget (``ConnectRetry.timeout_s``); the Secrets Manager reads it
makes, and every retry of them, must end within what is left of it, also when Secrets
Manager accepts a connection and never answers. botocore fixes a client's timeouts and
retries when the client is built, and takes no per-call configuration, so two event
handlers on the client do the cutting while a read runs :func:`within` a budget (outside
one, the client is untouched: an application's own calls through an injected client keep
its settings):

- ``before-send``: an attempt's connect and read timeouts are cut to the time left
  (:func:`rotation_contract.aws_calls.attempt_timeouts`, as the rotation function's ``call_api``
  cuts its own); with no time left it is not sent at all. The attempt is sent through
  botocore's own transport class (``URLLib3Session``) built for those timeouts, whose
  connections' sockets are shut down when the time is up
  (:func:`rotation_client._deadline.shutting_down_at`): a socket timeout bounds one
  ``recv``, and an endpoint that answers a byte at a time would outlast any number of
  them. Those transports are kept per timeout bucket (rounded down to half a second, a few
  per client), so that reads keep their keep-alive connections instead of opening one per
  call;
- ``needs-retry``, ahead of botocore's retry handler: no retry whose backoff (botocore's
  is at most ``2 ** (attempt - 1)`` seconds) and next attempt would not fit in the time
  left; the attempt's own failure is raised instead.

Building a botocore client costs tens of milliseconds and its own connection pool: the
client is built once per source and reused.
"""

from __future__ import annotations

import contextvars
import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rotation_client._config import secrets_manager_endpoint
from rotation_client._deadline import shutting_down_at, watch
from rotation_contract.aws_calls import CLIENT_DISTRIBUTION, attempt_timeouts, user_agent_extra
from rotation_contract.secrets_manager import CONNECT_TIMEOUT_S, READ_TIMEOUT_S

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse

__all__ = [
    "ATTEMPTS",
    "CONNECT_TIMEOUT_S",
    "MIN_ATTEMPT_S",
    "MIN_READ_S",
    "READ_TIMEOUT_S",
    "OutOfTime",
    "bound",
    "new_client",
    "within",
]

# botocore's standard retries, for throttling and transient faults, within the time left.
ATTEMPTS = 3
# Less time than this left: no attempt is started (it could not get an answer).
MIN_ATTEMPT_S = 0.1
# Secrets Manager answers in tens of milliseconds: a read given this long without an
# answer says something about Secrets Manager (or the way to it); a read cut shorter says
# only that its caller had no time. connect() keeps this much for a read of each round.
MIN_READ_S = 0.5
# Cut timeouts are rounded down to this step, so that reads share a few transports.
_BUCKET_S = 0.5
# Transports kept per client (the least recently used is closed past this).
_KEPT_TRANSPORTS = 4
_SEND_ID = "rotation-client-bounded-send"
_RETRY_ID = "rotation-client-bounded-retry"


class OutOfTime(Exception):  # noqa: N818  # a condition, raised through botocore
    """The caller's time ran out: no time was left for an attempt, or the attempt in
    flight was cut at the deadline (internal: botocore does not retry it).
    ``what`` says which wait it ended."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class _Budget:
    expires_at: float

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()


# Per thread and per asyncio task: concurrent reads never see each other's budget.
_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "rotation_client_budget", default=None
)


@contextmanager
def within(timeout_s: float) -> Iterator[None]:
    """Bound the calls made in this block, through clients made :func:`bound`, to
    ``timeout_s`` seconds of real time (no bound when infinite)."""
    if math.isinf(timeout_s):
        yield
        return
    token = _budget.set(_Budget(time.monotonic() + timeout_s))
    try:
        yield
    finally:
        _budget.reset(token)


def new_client() -> Any:
    """A ``secretsmanager`` client as the handlers make theirs: ``SECRETS_MANAGER_ENDPOINT``,
    else boto3's own resolution; botocore's standard retries; the user agent naming this
    distribution; every read bounded (:func:`bound`)."""
    # boto3 only here, on first use: importing the client stays light, and inside Lambda
    # the extension path never loads it. A session of its own: boto3's default session is
    # not safe to build clients from in several threads at once.
    import boto3
    from botocore.config import Config

    config = Config(
        # total_max_attempts, not max_attempts: the latter counts retries.
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        user_agent_extra=user_agent_extra(CLIENT_DISTRIBUTION),
    )
    session = boto3.session.Session()
    verify = _verify_setting(session._session)  # boto3's botocore session
    client = session.client(
        "secretsmanager", endpoint_url=secrets_manager_endpoint(), config=config, verify=verify
    )
    bound(client, verify=verify)
    return client


def _verify_setting(session: Any) -> str | bool:
    # AWS_CA_BUNDLE or the profile's ca_bundle, else the default trust store: resolved once
    # and passed explicitly, so that the client's own connections and the cut ones agree.
    ca_bundle = session.get_config_variable("ca_bundle")
    return str(ca_bundle) if ca_bundle else True


def _client_verify(client: Any) -> str | bool | None:
    """What an injected client verifies TLS against (botocore keeps it private); None when
    that cannot be read (then botocore's default resolution)."""
    endpoint = getattr(client, "_endpoint", None)
    session = getattr(endpoint, "http_session", None)
    verify = getattr(session, "_verify", None)
    return verify if isinstance(verify, str | bool) else None


def bound(client: Any, *, verify: str | bool | None = None) -> None:
    """Bound ``client``'s calls made :func:`within` a budget. Idempotent.

    ``verify`` is the TLS verification the client was built with; None reads it from the
    client where botocore keeps it (else botocore's default resolution). An object that
    is not a botocore client (a stand-in with ``get_secret_value``) is left as it is.
    """
    meta = getattr(client, "meta", None)
    if meta is None or not hasattr(meta, "events"):
        return
    service_id = meta.service_model.service_id.hyphenize()
    events = client.meta.events
    if verify is None:
        verify = _client_verify(client)
    events.register(
        f"before-send.{service_id}", _CutSend(client.meta.config, verify), unique_id=_SEND_ID
    )
    # First: botocore's retry handler sleeps its backoff as soon as it answers.
    events.register_first(f"needs-retry.{service_id}", _stop_retrying, unique_id=_RETRY_ID)


class _CutSend:
    """A ``before-send`` handler: sends an attempt with its timeouts cut to the time left
    (None lets botocore send with the client's own when they fit)."""

    def __init__(self, config: Any, verify: str | bool | None) -> None:
        # Any: botocore sets Config's attributes dynamically, and its stubs do not list them.
        self._config = config
        self._verify = verify
        self._configured = (float(config.connect_timeout), float(config.read_timeout))
        self._transports: OrderedDict[tuple[float, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        budget = _budget.get()
        if budget is None:
            return None
        left = budget.remaining()
        if left < MIN_ATTEMPT_S:
            raise OutOfTime("no time was left to ask Secrets Manager")
        bucket = math.floor(left / _BUCKET_S) * _BUCKET_S
        once = None
        if bucket < _BUCKET_S:
            # The last half second: a transport of its own, closed after this attempt.
            transport = once = self._transport(attempt_timeouts(self._configured, left))
        else:
            transport = self._kept(attempt_timeouts(self._configured, bucket))
        try:
            with shutting_down_at(left) as deadline:
                try:
                    response = transport.send(request)
                except Exception:
                    if deadline.fired:
                        # Cut by the caller's time, not failed on its own.
                        raise OutOfTime("Secrets Manager did not answer") from None
                    raise
                if deadline.fired:
                    # An answer that "ended" when its socket was shut down is cut short
                    # (headers or body ended by the shutdown): never parse it.
                    raise OutOfTime("Secrets Manager did not answer")
                return response  # type: ignore[no-any-return]
        finally:
            if once is not None:
                once.close()

    def _kept(self, timeouts: tuple[float, float]) -> Any:
        with self._lock:
            transport = self._transports.get(timeouts)
            if transport is not None:
                self._transports.move_to_end(timeouts)
                return transport
            transport = self._transport(timeouts)
            self._transports[timeouts] = transport
            if len(self._transports) > _KEPT_TRANSPORTS:
                _, oldest = self._transports.popitem(last=False)
                oldest.close()  # idle: a send in flight keeps its own connection
            return transport

    def _transport(self, timeouts: tuple[float, float]) -> Any:
        if self._verify is None:
            import botocore.session

            self._verify = _verify_setting(botocore.session.get_session())
        settings: dict[str, Any] = {
            "verify": self._verify,
            "proxies": self._config.proxies,
            "timeout": timeouts,
            "max_pool_connections": self._config.max_pool_connections,
            "client_cert": self._config.client_cert,
            "proxies_config": self._config.proxies_config,
        }
        return _watched_session_class()(**settings)


@functools.cache
def _watched_session_class() -> type:
    """botocore's ``URLLib3Session``, with every connection it uses watched by the current
    deadline (:func:`rotation_client._deadline.watch`): a new connection's socket as soon
    as it exists (the TLS handshake included), a kept-alive one when it is taken from the
    pool. Made on first use: importing the client loads no botocore."""
    from botocore.awsrequest import (
        AWSHTTPConnection,
        AWSHTTPConnectionPool,
        AWSHTTPSConnection,
        AWSHTTPSConnectionPool,
    )
    from botocore.httpsession import URLLib3Session

    class HTTPConnection(AWSHTTPConnection):
        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            watch(sock)
            return sock

    class HTTPSConnection(AWSHTTPSConnection):
        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            watch(sock)
            return sock

    class HTTPPool(AWSHTTPConnectionPool):
        ConnectionCls = HTTPConnection

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            watch(conn)
            return conn

    class HTTPSPool(AWSHTTPSConnectionPool):
        ConnectionCls = HTTPSConnection

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            watch(conn)
            return conn

    class WatchedSession(URLLib3Session):
        def __init__(self, **settings: Any) -> None:
            super().__init__(**settings)
            # botocore reads this mapping when it makes a pool (also through a proxy).
            pools: dict[str, type] = self._pool_classes_by_scheme  # type: ignore[attr-defined]
            pools.update(http=HTTPPool, https=HTTPSPool)

    return WatchedSession


def _stop_retrying(
    response: Any = None,
    caught_exception: BaseException | None = None,
    attempts: int = 1,
    operation: Any = None,
    **_: Any,
) -> None:
    """A ``needs-retry`` handler: raises the attempt's own failure when a retry (botocore's
    backoff, then an attempt) would not fit in the time left; None leaves it to botocore."""
    budget = _budget.get()
    if budget is None:
        return
    failed = caught_exception is not None or (
        response is not None and response[0].status_code >= 300
    )
    if not failed:
        return
    backoff = min(2.0 ** (attempts - 1), 20.0)  # botocore's largest for this attempt
    if budget.remaining() >= backoff + MIN_ATTEMPT_S:
        return
    if caught_exception is not None:
        raise caught_exception
    from botocore.exceptions import ClientError

    raise ClientError(response[1], operation.name)
