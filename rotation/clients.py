"""The AWS API clients the framework uses, and every call bounded by the step's deadline.

One place builds each client (:func:`secrets_manager_client`, :func:`rds_client`,
:func:`events_client`), and one
function makes every call (:func:`call_api`): each attempt's connect and read timeouts are
cut to the time the step has left, transient failures are retried within that time, and a
failure says which API did not answer and within how long.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from rotation.config import secrets_manager_endpoint
from rotation.errors import DeadlineError, RotationError
from rotation.retry import Deadline, RetryPolicy, call_with_retries
from rotation_contract.aws_calls import ROTATION_DISTRIBUTION, attempt_timeouts, user_agent_extra
from rotation_contract.aws_errors import TRANSIENT_CODES, error_code
from rotation_contract.secrets_manager import CONNECT_TIMEOUT_S, READ_TIMEOUT_S

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "CONNECT_TIMEOUT_S",
    "MIN_SEND_S",
    "READ_TIMEOUT_S",
    "attempt_timeouts",
    "bound_by_deadline",
    "call_api",
    "events_client",
    "rds_client",
    "secrets_manager_client",
]

T = TypeVar("T")


_TRANSPORT_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)
# Transport failures after which the request may have reached the service: an answer lost
# on the way back. A call that must not happen twice (PutEvents) is not retried after them.
_MAYBE_DELIVERED = (ReadTimeoutError, ConnectionClosedError)
_HOOK_ID = "rotation-deadline-bound-send"
# Less time than this left when a request would go out: it is not sent (a DeadlineError).
# No HTTPS request to an AWS endpoint completes in less, and urllib3 refuses a timeout of 0
# with a ValueError that would read as an unexpected failure.
MIN_SEND_S = 0.05


# -- construction -------------------------------------------------------------------------


def secrets_manager_client(
    endpoint_url: str | None = None, *, retries: bool = False
) -> SecretsManagerClient:
    """A ``secretsmanager`` client for ``endpoint_url``, else ``SECRETS_MANAGER_ENDPOINT``,
    else botocore's own resolution (``AWS_ENDPOINT_URL_SECRETS_MANAGER``,
    ``AWS_ENDPOINT_URL``, the regional endpoint).

    botocore's own retries are off by default: the rotation retries throttling with
    tenacity, bounded by the step's deadline (:func:`call_api`), and two layers of retries
    would multiply each other. Applications (:mod:`rotation_client`) ask for botocore's
    standard retries.
    """
    client = _create_client(
        "secretsmanager", endpoint_url or secrets_manager_endpoint(), retries=retries
    )
    return cast("SecretsManagerClient", client)


def rds_client(endpoint_url: str | None = None) -> RDSClient:
    """An ``rds`` client, built exactly like the Secrets Manager one: botocore's retries
    off (the caller's :func:`call_api` retries within the deadline), the same timeouts,
    the same per-attempt bound. ``endpoint_url`` unset means botocore's own resolution
    (``AWS_ENDPOINT_URL_RDS``, ``AWS_ENDPOINT_URL``, the regional endpoint)."""
    return cast("RDSClient", _create_client("rds", endpoint_url, retries=False))


def events_client(endpoint_url: str | None = None) -> EventBridgeClient:
    """An EventBridge client for rotation events (:mod:`rotation.events`), built like the
    others: botocore's retries off, the same timeouts, each attempt cut to the deadline.
    ``endpoint_url`` unset means botocore's own resolution (``AWS_ENDPOINT_URL_EVENTBRIDGE``,
    ``AWS_ENDPOINT_URL``, the regional endpoint)."""
    return cast("EventBridgeClient", _create_client("events", endpoint_url, retries=False))


def _create_client(service: str, endpoint_url: str | None, *, retries: bool) -> Any:
    # botocore directly, not boto3: the same client and configuration chain (credentials,
    # region, AWS_ENDPOINT_URL*), without importing boto3 and s3transfer (~50 ms of cold
    # start). Deferred to the first invocation.
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    config = Config(
        # total_max_attempts, not max_attempts: in a client Config the latter counts
        # *retries*, so max_attempts=1 meant a second attempt inside each of ours.
        retries={"mode": "standard", "total_max_attempts": 3 if retries else 1},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        # CloudTrail tells the rotation function's calls from an application's.
        user_agent_extra=user_agent_extra(ROTATION_DISTRIBUTION),
    )
    # Resolved here and passed explicitly, so that the client's own connections and the
    # deadline-bound ones (see _DeadlineBoundSend) verify TLS against the same roots.
    verify = _verify_setting(session)
    client = session.create_client(service, endpoint_url=endpoint_url, config=config, verify=verify)
    bound_by_deadline(client, verify=verify)
    return client


def _verify_setting(session: Any) -> str | bool:
    # AWS_CA_BUNDLE or the profile's ca_bundle, else the default trust store. (botocore
    # would fall back to the requests library's REQUESTS_CA_BUNDLE; we resolve it once and
    # explicitly so that both connection paths below agree.)
    ca_bundle = session.get_config_variable("ca_bundle")
    return str(ca_bundle) if ca_bundle else True


# -- the per-attempt bound ----------------------------------------------------------------


@dataclass
class _Attempt:
    """The attempt in progress on this thread: its deadline, what it calls (for messages),
    and the timeouts it got."""

    deadline: Deadline
    what: str = "an API"
    service: str = "AWS"
    applied: tuple[float, float] | None = None


def _out_of_time(service: str, what: str) -> DeadlineError:
    return DeadlineError(
        f"no time was left in the step to call {service} ({what}); nothing was sent. The "
        "step's earlier work used up the invocation's time: Secrets Manager's re-attempt "
        "continues the rotation; if this recurs, raise the function's timeout"
    )


# Per thread (and per asyncio task): concurrent rotations on one client never see each
# other's deadline.
_current_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "rotation_api_attempt", default=None
)


class _DeadlineBoundSend:
    """A ``before-send`` handler: sends an attempt whose timeouts the deadline cut.

    Why this way. botocore fixes a client's connect and read timeouts when the client is
    built, and its ``send`` takes no timeout (recent botocore versions read a per-request
    *read* timeout from the request context, but not a connect timeout, and the Lambda
    runtime's botocore is older). A client per timeout value would lose the handlers
    registered on the client it replaces (tests count calls that way) and could not be
    derived from a client someone injected. ``before-send`` is botocore's documented hook
    for answering a request in place of its HTTP layer: when the step has time for the
    configured timeouts we return None and botocore sends as usual, over its pooled
    keep-alive connections; when it has less, we send the request with botocore's own
    transport class (``URLLib3Session``), built for this attempt with the cut timeouts and
    the client's TLS and proxy settings, so that every transport failure still arrives as
    botocore's own exception (ConnectTimeoutError, ReadTimeoutError, ...). That costs one
    new connection per call in the last seconds of a step only.

    Caveat: a handler registered earlier that answers requests itself (moto's in-process
    mock) still wins, but we send as well; moto's server mode, which the tests use, is
    unaffected.
    """

    def __init__(self, config: Any, verify: str | bool | None) -> None:
        # Any: botocore sets Config's attributes dynamically, and its stubs do not list them.
        self._config = config
        self._verify = verify
        self._configured = (float(config.connect_timeout), float(config.read_timeout))

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        attempt = _current_attempt.get()
        if attempt is None:  # a call outside call_api: the client's own timeouts
            return None
        remaining = attempt.deadline.remaining()
        if remaining < MIN_SEND_S:
            # Raised out of botocore's send (an event handler's exception propagates as
            # it is): not retried, never a zero timeout handed to urllib3.
            raise _out_of_time(attempt.service, attempt.what)
        timeouts = attempt_timeouts(self._configured, remaining)
        attempt.applied = timeouts
        if timeouts == self._configured:
            return None
        import botocore.session
        from botocore.httpsession import URLLib3Session

        if self._verify is None:  # resolved on first use: most steps never get here
            self._verify = _verify_setting(botocore.session.get_session())
        settings: dict[str, Any] = {
            "verify": self._verify,
            "proxies": self._config.proxies,
            "timeout": timeouts,
            "max_pool_connections": 1,
            "client_cert": self._config.client_cert,
            "proxies_config": self._config.proxies_config,
        }
        session = URLLib3Session(**settings)
        try:
            # send() reads the whole body before returning (our operations do not stream).
            return session.send(request)
        finally:
            session.close()


def bound_by_deadline(client: Any, *, verify: str | bool | None = None) -> None:
    """Make every :func:`call_api` attempt through ``client`` use timeouts cut to the
    deadline. Idempotent; the clients built here already have it.

    Parameters
    ----------
    verify:
        The TLS verification the client was built with (botocore keeps it private). None
        means botocore's default resolution (``AWS_CA_BUNDLE``, else the default roots);
        pass it for a client built with ``verify=False`` or a custom bundle.
    """
    service_id = client.meta.service_model.service_id.hyphenize()
    # The unique id makes a second registration (a store given a client from here) a no-op.
    client.meta.events.register(
        f"before-send.{service_id}",
        _DeadlineBoundSend(client.meta.config, verify),
        unique_id=_HOOK_ID,
    )


@contextmanager
def _attempt_scope(deadline: Deadline, what: str, service: str) -> Iterator[_Attempt]:
    attempt = _Attempt(deadline, what, service)
    token = _current_attempt.set(attempt)
    try:
        yield attempt
    finally:
        _current_attempt.reset(token)


# -- the call -----------------------------------------------------------------------------


class _TransientApiError(Exception):
    """Internal marker: this API failure is worth another attempt."""

    def __init__(self, original: Exception, applied: tuple[float, float] | None) -> None:
        super().__init__(type(original).__name__)
        self.original = original
        self.applied = applied


class _MaybeDeliveredError(Exception):
    """Internal marker: this attempt's answer was lost, and the call is not retried."""

    def __init__(self, transient: _TransientApiError) -> None:
        super().__init__(str(transient))
        self.transient = transient


def call_api(
    fn: Callable[[], T],
    *,
    what: str,
    service: str,
    deadline: Deadline,
    policy: RetryPolicy | None,
    error: type[RotationError],
    at_most_once: bool = False,
) -> T:
    """Make one API call, bounded by ``deadline``.

    Each attempt's connect and read timeouts are cut to the time left (on a client
    :func:`bound_by_deadline`); throttling, the service's 5xx faults and transport failures
    are retried with backoff while the deadline allows.

    Parameters
    ----------
    what:
        The operation, for messages ("GetSecretValue(AWSCURRENT)").
    service:
        The API's name, for messages ("Secrets Manager").
    error:
        What to raise when the retries or the time ran out.
    at_most_once:
        For a call whose repetition is visible (PutEvents delivers an event each time):
        retried only where the request certainly did not arrive (no connection, an error
        answer), never after a read timeout or a connection closed before the answer.

    Raises
    ------
    DeadlineError
        Less than :data:`MIN_SEND_S` was left when the call (or a retry's request) would
        have gone out: nothing was sent.
    RotationError
        ``error``, naming the API, the operation, the cause and what to check.
    botocore.exceptions.ClientError
        Any other API error, at once: the caller knows what it means.
    """
    if deadline.remaining() < MIN_SEND_S:
        raise _out_of_time(service, what)

    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        with _attempt_scope(deadline, what, service) as scope:
            try:
                return fn()
            except ClientError as exc:
                if error_code(exc) in TRANSIENT_CODES:
                    raise _TransientApiError(exc, scope.applied) from exc
                raise
            except _TRANSPORT_ERRORS as exc:
                transient = _TransientApiError(exc, scope.applied)
                if at_most_once and isinstance(exc, _MAYBE_DELIVERED):
                    raise _MaybeDeliveredError(transient) from exc
                raise transient from exc

    try:
        return call_with_retries(
            attempt, retry_on=_TransientApiError, deadline=deadline, policy=policy, what=what
        )
    except _TransientApiError as exc:
        problem = _transient_problem(exc, what=what, service=service, attempts=attempts)
        raise error(problem) from exc.original
    except _MaybeDeliveredError as exc:
        original = exc.transient.original
        if isinstance(original, ReadTimeoutError):
            read = (exc.transient.applied or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S))[1]
            lost = f"did not answer {what} within {read:.1f} s (the read timeout)"
        else:
            lost = f"closed the connection before answering {what}"
        raise error(
            f"{service} {lost}; not retried: the request may have arrived, and this call "
            "must not happen twice"
        ) from original


def _transient_problem(exc: _TransientApiError, *, what: str, service: str, attempts: int) -> str:
    original = exc.original
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    connect, read = exc.applied or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    check = (
        f"check the function's network path to {service} (VPC endpoint or NAT gateway, "
        "security groups, routes)"
    )
    if isinstance(original, ReadTimeoutError):
        return (
            f"{service} did not answer {what} within {read:.1f} s (the read timeout, cut to "
            f"the time the step had left; {tries}); {check}"
        )
    if isinstance(original, ConnectTimeoutError):
        return (
            f"could not connect to {service} for {what} within {connect:.1f} s (the connect "
            f"timeout, cut to the time the step had left; {tries}); {check}"
        )
    detail = error_code(original) if isinstance(original, ClientError) else str(original)
    return (
        f"{what} kept failing with {type(original).__name__} ({detail or 'no error code'}) "
        f"until the retries or the time ran out ({tries})"
    )
