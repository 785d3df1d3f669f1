"""Every Secrets Manager call the rotation makes, and the staging-label transitions.

Nothing else in the framework talks to Secrets Manager. Reads go through a cache keyed by
(secret ARN, version id): a version's value never changes once written, and Secrets Manager
usually runs the four steps of a rotation in one warm container, so setSecret and
testSecret find in memory what createSecret already read or wrote. Labels are never cached:
every invocation reads them fresh with one DescribeSecret.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from rotation.clients import bound_by_deadline, call_api
from rotation.errors import RotationError, SecretsManagerError, StagingError
from rotation.observability import scrubber as default_scrubber
from rotation.retry import Deadline, RetryPolicy
from rotation.scrub import Scrubber
from rotation.secret import AWSCURRENT, AWSPENDING, SecretDescription, SecretVersion
from rotation_contract.aws_errors import error_code, error_message

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["SecretStore", "StoreSession", "VersionCache"]

T = TypeVar("T")


class VersionCache:
    """A small, thread-safe LRU of secret strings keyed by (ARN, version id), with when
    each version was created (for the rotation's duration in its completion event)."""

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[str, datetime.datetime | None]] = (
            OrderedDict()
        )
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, arn: str, version_id: str) -> str | None:
        with self._lock:
            entry = self._entries.get((arn, version_id))
            if entry is None:
                return None
            self._entries.move_to_end((arn, version_id))
            return entry[0]

    def created(self, arn: str, version_id: str) -> datetime.datetime | None:
        """When the version was created, if this container read or wrote it."""
        with self._lock:
            entry = self._entries.get((arn, version_id))
            return entry[1] if entry else None

    def put(
        self, arn: str, version_id: str, value: str, created: datetime.datetime | None = None
    ) -> None:
        with self._lock:
            self._entries[(arn, version_id)] = (value, created)
            self._entries.move_to_end((arn, version_id))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class SecretStore:
    """Secrets Manager for one container: the client, the version cache, the scrubber.

    Parameters
    ----------
    client:
        A boto3 ``secretsmanager`` client; inject one to count or intercept calls. Built
        with ``verify=False`` or a custom CA bundle? Call
        :func:`rotation.clients.bound_by_deadline` on it with that setting first.
    cache:
        Where version values are remembered across warm invocations.
    retry_policy:
        How throttling and transport errors are retried (bounded by the step's deadline).
    """

    def __init__(
        self,
        client: SecretsManagerClient,
        *,
        cache: VersionCache | None = None,
        retry_policy: RetryPolicy | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.client = client
        # Every attempt's connect and read timeouts are cut to the step's deadline, also on
        # a client built elsewhere (a no-op for one from rotation.clients).
        bound_by_deadline(client)
        self.cache = cache if cache is not None else VersionCache()
        self.retry_policy = retry_policy or RetryPolicy()
        # Not `scrubber or ...`: an empty Scrubber is falsy, and the caller's must be used.
        self.scrubber = scrubber if scrubber is not None else default_scrubber

    def session(self, deadline: Deadline) -> StoreSession:
        """The calls of one invocation, all bounded by ``deadline``."""
        return StoreSession(self, deadline)


class StoreSession:
    """Secrets Manager calls made within one invocation's deadline."""

    def __init__(self, store: SecretStore, deadline: Deadline) -> None:
        self._store = store
        self._client = store.client
        self.deadline = deadline

    # -- plumbing ---------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        # Each attempt's timeouts are cut to the deadline; throttling and transport
        # failures are retried within it (rotation.clients).
        return call_api(
            fn,
            what=what,
            service="Secrets Manager",
            deadline=self.deadline,
            policy=self._store.retry_policy,
            error=SecretsManagerError,
        )

    def _remember(
        self, version: SecretVersion, created: datetime.datetime | None = None
    ) -> SecretVersion:
        self._store.cache.put(version.arn, version.version_id, version.secret_string, created)
        return self._register(version)

    def _register(self, version: SecretVersion) -> SecretVersion:
        """Make the scrubber blank the version's values (again: its LRU may have dropped
        them while the version cache kept the value, in a container that lived long)."""
        try:
            parsed: dict[str, Any] | None = version.json()
        except RotationError:
            parsed = None
        self._store.scrubber.add_secret_json(version.secret_string, parsed)
        return version

    # -- reads ------------------------------------------------------------------------

    def describe(self, secret_id: str) -> SecretDescription:
        """One ``DescribeSecret``: ARN, rotation state, labels and tags."""
        try:
            response = self._call(
                "DescribeSecret", lambda: self._client.describe_secret(SecretId=secret_id)
            )
        except ClientError as exc:
            raise _api_error(f"describing secret {secret_id}", exc) from exc
        return SecretDescription.from_api(response)

    def get_version(self, arn: str, version_id: str, label: str | None = None) -> SecretVersion:
        """A version's value by id, from the cache when this container has seen it.

        ``label`` is what the caller expects on the version; it is checked by Secrets
        Manager (``VersionStage``) on a cache miss and only used in messages otherwise.
        """
        cached = self._store.cache.get(arn, version_id)
        if cached is not None:
            return self._register(SecretVersion(arn, version_id, cached, label))
        kwargs: dict[str, str] = {"SecretId": arn, "VersionId": version_id}
        if label:
            kwargs["VersionStage"] = label
        try:
            response = self._call(
                f"GetSecretValue({label or version_id})",
                lambda: self._client.get_secret_value(**kwargs),
            )
        except ClientError as exc:
            raise _api_error(f"reading the {label or version_id} version", exc) from exc
        if "SecretString" not in response:
            raise StagingError(
                f"the {label or version_id} version holds binary data, not a SecretString"
            )
        return self._remember(
            SecretVersion(arn, response["VersionId"], response["SecretString"], label),
            response.get("CreatedDate"),
        )

    def get_pending(self, arn: str, token: str) -> SecretVersion | None:
        """The value already stored for ``token`` as AWSPENDING, or None when there is none.

        Secrets Manager registers the token as a value-less AWSPENDING version before the
        rotation starts; reading it then fails with ResourceNotFoundException.
        """
        try:
            return self.get_version(arn, token, AWSPENDING)
        except SecretsManagerError as exc:
            if isinstance(exc.__cause__, ClientError) and (
                error_code(exc.__cause__) == "ResourceNotFoundException"
            ):
                return None
            raise

    def get_current_of(self, secret_id: str) -> SecretVersion:
        """AWSCURRENT of another secret (a master secret), by label: one call, uncached."""
        try:
            response = self._call(
                "GetSecretValue(AWSCURRENT)",
                lambda: self._client.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT),
            )
        except ClientError as exc:
            raise _api_error(f"reading secret {secret_id}", exc) from exc
        if "SecretString" not in response:
            raise StagingError(f"secret {secret_id} holds binary data, not a SecretString")
        return self._remember(
            SecretVersion(response["ARN"], response["VersionId"], response["SecretString"])
        )

    # -- writes -----------------------------------------------------------------------

    def put_pending(
        self,
        arn: str,
        token: str,
        secret_string: str,
        rotation_token: str | None,
        *,
        stage: str = AWSPENDING,
    ) -> SecretVersion:
        """Store ``secret_string`` as the version ``token``, labelled AWSPENDING, and return
        what the version holds: another invocation's value when it stored one first.

        ``stage`` puts another label on it instead (a version must carry one, or Secrets
        Manager makes it AWSCURRENT): direct mode stores the value under a label of its own
        first and takes AWSPENDING with :meth:`claim_stage`, which can fail, where a put
        would silently move AWSPENDING off another rotation's version.
        """
        kwargs: dict[str, Any] = {
            "SecretId": arn,
            "ClientRequestToken": token,
            "SecretString": secret_string,
            "VersionStages": [stage],
        }
        if rotation_token:
            # Required when the function assumes a role or rotates another account's secret.
            kwargs["RotationToken"] = rotation_token
        # Register before the call: a failure message must not be able to echo it.
        self._store.scrubber.add(secret_string)
        try:
            self._call("PutSecretValue", lambda: self._client.put_secret_value(**kwargs))
        except ClientError as exc:
            if stage == AWSPENDING and error_code(exc) == "ResourceExistsException":
                # Secrets Manager keeps the first value stored for a token and refuses
                # another: a concurrent createSecret won. Its value is the pending one now
                # (read past the cache, which holds only what was stored successfully).
                stored = self.get_pending(arn, token)
                if stored is not None:
                    return stored
            raise _api_error("storing the pending version", exc) from exc
        # PutSecretValue does not say when; now is within a round trip of it.
        created = datetime.datetime.now(datetime.UTC)
        return self._remember(SecretVersion(arn, token, secret_string, stage), created)

    def created_at(self, arn: str, version_id: str) -> datetime.datetime | None:
        """When ``version_id`` was created, if this container has read or written it (no
        API call)."""
        return self._store.cache.created(arn, version_id)

    def move_current(self, arn: str, token: str, current_version: str | None) -> None:
        """Move AWSCURRENT to ``token``; Secrets Manager moves AWSPREVIOUS along by itself."""
        kwargs: dict[str, str] = {
            "SecretId": arn,
            "VersionStage": AWSCURRENT,
            "MoveToVersionId": token,
        }
        if current_version:
            kwargs["RemoveFromVersionId"] = current_version
        try:
            self._call(
                "UpdateSecretVersionStage(AWSCURRENT)",
                lambda: self._client.update_secret_version_stage(**kwargs),
            )
        except ClientError as exc:
            raise _api_error("moving AWSCURRENT", exc) from exc

    def claim_stage(self, arn: str, stage: str, token: str, holder: str | None) -> None:
        """Put ``stage`` on ``token``, taking it from ``holder`` (None: from nobody).

        Secrets Manager performs this as a compare-and-swap: it fails when the label sits on
        any version other than ``holder`` (with ``holder`` None: on any version at all).
        """
        kwargs: dict[str, str] = {"SecretId": arn, "VersionStage": stage, "MoveToVersionId": token}
        if holder is not None:
            kwargs["RemoveFromVersionId"] = holder
        try:
            self._call(
                f"UpdateSecretVersionStage({stage})",
                lambda: self._client.update_secret_version_stage(**kwargs),
            )
        except ClientError as exc:
            raise _api_error(f"moving {stage} to version {token}", exc) from exc

    def remove_stage(self, arn: str, stage: str, version_id: str) -> None:
        """Take ``stage`` off ``version_id``."""
        try:
            self._call(
                f"UpdateSecretVersionStage({stage})",
                lambda: self._client.update_secret_version_stage(
                    SecretId=arn, VersionStage=stage, RemoveFromVersionId=version_id
                ),
            )
        except ClientError as exc:
            raise _api_error(f"removing {stage} from version {version_id}", exc) from exc


def _api_error(doing: str, exc: ClientError) -> SecretsManagerError:
    code = error_code(exc, default="UnknownError")
    # AWS error messages name resources and actions, never secret values.
    return SecretsManagerError(f"{doing} failed: {code}: {error_message(exc)}".rstrip(": "))
