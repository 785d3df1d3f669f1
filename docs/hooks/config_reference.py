"""The configuration reference: environment variables and the secret's JSON keys.

The names and defaults come from the modules that define them, read as source (``ast``:
nothing is imported, so the CDK construct's module counts without aws-cdk-lib): every
``ENV_* = "NAME"`` constant of :data:`SOURCES`, and the keys
:func:`rotation_contract.pg.secret.parse_postgres_secret` reads. What each one means is
written here, keyed by that name; ``tests/unit/test_docs_config_reference.py`` fails when
the code has a variable or a key this file does not describe, or describes one the code
does not have.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENVIRONMENT",
    "SECRET_KEYS",
    "SOURCES",
    "Described",
    "env_constants",
    "render",
    "secret_keys_read",
]

ROOT = Path(__file__).resolve().parents[2]

# The one place each side reads its environment, and who reads it there.
SOURCES: dict[str, str] = {
    "contract/rotation_contract/secrets_manager.py": "function, client",
    "rotation/config.py": "function",
    "handlers/pg_config.py": "function",
    "contract/rotation_contract/pg/settings.py": "function, client",
    "client/rotation_client/_config.py": "client",
    "cdk/rotation_cdk/_artifact.py": "CDK construct",
}
SECRET_MODULE = "contract/rotation_contract/pg/secret.py"  # noqa: S105  # a path, not a password
# The functions of SECRET_MODULE that read the secret's keys.
_SECRET_READERS = ("parse_postgres_secret", "_port", "_string")


@dataclass(frozen=True)
class Described:
    """What a variable or key means. ``default`` is shown as written, after ``{NAME}`` (a
    constant of the defining module) is replaced by that constant's value."""

    default: str
    meaning: str


ENVIRONMENT: dict[str, Described] = {
    "SECRETS_MANAGER_ENDPOINT": Described(
        "unset",
        "Secrets Manager endpoint URL (a VPC endpoint, an emulator). Unset: boto3's own "
        "resolution (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, the region's "
        "endpoint). The function and the client read the same variable, each from its own "
        "environment.",
    ),
    "EXCLUDE_CHARACTERS": Described(
        "`{DEFAULT_EXCLUDE_CHARACTERS}`",
        "Characters never used in a generated password (the AWS reference's default).",
    ),
    "PASSWORD_LENGTH": Described(
        "`{DEFAULT_PASSWORD_LENGTH}`",
        "Length of a generated password, 1 to `{MAX_PASSWORD_LENGTH}`.",
    ),
    "EXCLUDE_NUMBERS": Described(
        "`false`",
        "`true`, `1`, `y`, `yes` (any case) mean true; `false`, `0`, `n`, `no` false; "
        "anything else is a configuration error (the AWS reference reads it as false).",
    ),
    "EXCLUDE_PUNCTUATION": Described("`false`", "As `EXCLUDE_NUMBERS`, for punctuation."),
    "EXCLUDE_UPPERCASE": Described("`false`", "As `EXCLUDE_NUMBERS`, for upper-case letters."),
    "EXCLUDE_LOWERCASE": Described("`false`", "As `EXCLUDE_NUMBERS`, for lower-case letters."),
    "REQUIRE_EACH_INCLUDED_TYPE": Described(
        "`true`", "At least one character of each included class."
    ),
    "EVENT_BUS_NAME": Described(
        "unset",
        "An EventBridge bus (name or ARN) for `RotationSucceeded` / `RotationStepFailed` "
        "events ([Rotation events](../operations/events.md)). Unset or empty: none.",
    ),
    "MASTER_MANAGED_ROLES": Described(
        "unset",
        "The roles the master may give a password without a login as them in this rotation: "
        "single-user recovery and `rotation verify --reconcile` (which also takes "
        "`--master-managed-roles`). Comma-separated names, matched exactly; a trailing `*` "
        "matches a prefix (`app_*`); `*` alone or inside a name is a configuration error. "
        "Unset: such a step fails naming the variable. Never the master's own role or a "
        "privileged one ([The master's authority](../concepts/master-authority.md)).",
    ),
    "PREVIOUS_PASSWORD_TTL": Described(
        "unset",
        "Multi-user: whole seconds, 0 to `{MAX_PREVIOUS_PASSWORD_TTL}`, after finishSecret "
        "after which AWSPREVIOUS's password stops logging in "
        "([Bounded overlap](../concepts/bounded-overlap.md)). Unset: it works until the next "
        "rotation. Single-user ignores it and says so once per container.",
    ),
    "STRAGGLER_POLICY": Described(
        "`{STRAGGLER_POLICIES[0]}`",
        "Multi-user: what setSecret does when clients are still logged in as the user whose "
        "password it is about to change ([Stragglers](../concepts/stragglers.md)): `warn` "
        "logs them and goes on, `refuse` fails the step with a "
        "[`StragglerError`](errors.md#stragglererror) and changes nothing. Any case; anything "
        "else is a configuration error.",
    ),
    "PGSSLROOTCERT": Described(
        "unset",
        "libpq's: an extra CA file trusted besides the shipped Amazon RDS bundle "
        "([TLS](../security/tls.md)). A path that is not a file is a configuration error.",
    ),
    "PGCONNECT_TIMEOUT": Described(
        "`{DEFAULT_CONNECT_TIMEOUT_S}`",
        "libpq's: seconds for a login; always also bounded by the time the step (or the "
        "client's `connect()`) has left.",
    ),
    "PGREQUIREAUTH": Described(
        "`{DEFAULT_REQUIRE_AUTH}`",
        "libpq's `require_auth`: the authentication methods a server may ask for. The "
        "default refuses a cleartext password and `trust` before anything is sent "
        "([Security invariants](../security/index.md)). Setting it is the deliberate override.",
    ),
    "PGCHANNELBINDING": Described(
        "`{DEFAULT_CHANNEL_BINDING}`",
        "libpq's `channel_binding` (`disable`, `prefer`, `require`) "
        "([Channel binding](../security/tls.md#channel-binding)).",
    ),
    "PGOPTIONS": Described(
        "unset",
        "libpq's session options; kept. The step's own timeouts are set inside each "
        "transaction, not here (a pooler or RDS Proxy may refuse startup options: "
        "[Poolers](../deploy/poolers.md)).",
    ),
    "ROTATION_TEST_QUERY": Described(
        "`{DEFAULT_TEST_QUERY}`",
        "The probe testSecret (and `rotation verify`) runs as the new credential.",
    ),
    "AWS_LAMBDA_FUNCTION_NAME": Described(
        "set by Lambda",
        "Client: with `AWS_SESSION_TOKEN`, tells it runs inside Lambda, where it reads "
        "secrets through the Parameters and Secrets Lambda Extension.",
    ),
    "AWS_SESSION_TOKEN": Described(
        "set by Lambda", "Client: the token the Parameters and Secrets Lambda Extension asks for."
    ),
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": Described(
        "`{DEFAULT_EXTENSION_PORT}`",
        "Client: the Parameters and Secrets Lambda Extension's port (the extension's own "
        "variable). Not a port number: a configuration error.",
    ),
    "ROTATION_CDK_CACHE": Described(
        "`~/.cache/pg-secrets-rotation/lambda`",
        "CDK construct: where the artifact built at synth caches the Lambda platform's "
        "dependencies ([AWS CDK](../deploy/cdk.md)).",
    ),
}

SECRET_KEYS: dict[str, Described] = {
    "engine": Described(
        "required",
        "{ENGINES}. Optional only in an RDS-managed master secret (which holds only "
        "`username` and `password`).",
    ),
    "host": Described(
        "required",
        "Database host. A master secret without one is an RDS-managed master: its host and "
        "port come from the RDS API through the secret's `aws:rds:primaryDbInstanceArn` / "
        "`aws:rds:primaryDbClusterArn` tag.",
    ),
    "username": Described("required", "The user whose password is rotated."),
    "password": Described("required", "Its password; never logged, never in a message."),
    "dbname": Described("`{DEFAULT_DBNAME}`", "The database to log in to."),
    "port": Described(
        "`{DEFAULT_PORT}`", "A number or a numeric string, 1 to 65535 (`true` is refused)."
    ),
    "masterarn": Described(
        "unset",
        "ARN of the secret holding the administrative credential: required by multi-user, "
        "used by single-user recovery "
        "([The master secret](../concepts/strategies.md#the-master-secret)).",
    ),
    "ssl": Described(
        "`verify-full`",
        '`true` / `"true"` or absent: `verify-full`; `false` / `"false"`: a plain '
        "connection; a libpq sslmode name: used as given ([TLS](../security/tls.md)). "
        "Never a silent fallback to plaintext.",
    ),
}


def _tree(relative: str) -> ast.Module:
    return ast.parse((ROOT / relative).read_text(), filename=relative)


def _assignments(relative: str) -> dict[str, ast.expr]:
    """A module's top-level ``NAME = value`` (and annotated) assignments."""
    found: dict[str, ast.expr] = {}
    for node in _tree(relative).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found[target.id] = node.value
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for name, value in zip(target.elts, node.value.elts, strict=True):
                    if isinstance(name, ast.Name):
                        found[name.id] = value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            found[node.target.id] = node.value
    return found


def _literal(node: ast.expr) -> object:
    # frozenset({...}) is not a literal to ast.literal_eval; its set is.
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        items = _literal(node.args[0]) if node.func.id == "frozenset" else None
        if isinstance(items, set):
            return frozenset(items)
    if isinstance(node, ast.BinOp):  # 366 * 24 * 3600
        return eval(compile(ast.Expression(node), "<constant>", "eval"), {"__builtins__": {}})  # noqa: S307  # arithmetic on literals only
    return ast.literal_eval(node)


def constants(relative: str) -> dict[str, object]:
    """The module's top-level constants that are literals (strings, numbers, tuples, sets)."""
    values = {}
    for name, node in _assignments(relative).items():
        try:
            values[name] = _literal(node)
        except (ValueError, TypeError, SyntaxError, NameError):
            continue
    return values


def env_constants() -> dict[str, list[tuple[str, str]]]:
    """Every environment variable the code names: ``NAME -> [(module, constant), ...]``,
    in the order of :data:`SOURCES` (the function and the client both name
    ``SECRETS_MANAGER_ENDPOINT``, each in its own configuration module)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for relative in SOURCES:
        for name, value in constants(relative).items():
            if name.startswith("ENV_") and isinstance(value, str):
                found.setdefault(value, []).append((relative, name))
    return found


def secret_keys_read() -> set[str]:
    """The JSON keys :func:`parse_postgres_secret` and its helpers read from the secret."""
    keys: set[object] = set()
    for node in _tree(SECRET_MODULE).body:
        if not (isinstance(node, ast.FunctionDef) and node.name in _SECRET_READERS):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call):
                func = inner.func
                reads = (isinstance(func, ast.Attribute) and func.attr == "get") or (
                    isinstance(func, ast.Name) and func.id == "_string"
                )
                args = inner.args[:1] if isinstance(func, ast.Attribute) else inner.args[1:2]
                if reads:
                    keys |= {a.value for a in args if isinstance(a, ast.Constant)}
            elif (
                isinstance(inner, ast.Compare)
                and isinstance(inner.ops[0], ast.In)
                and isinstance(inner.left, ast.Constant)
            ):
                keys.add(inner.left.value)
    return {key for key in keys if isinstance(key, str)}


def _fill(text: str, values: dict[str, object]) -> str:
    """``{NAME}`` and ``{NAME[0]}`` replaced by the constant's value."""
    out = text
    for name, value in values.items():
        if f"{{{name}[0]}}" in out and isinstance(value, tuple):
            out = out.replace(f"{{{name}[0]}}", str(value[0]))
        if f"{{{name}}}" in out:
            shown = (
                " or ".join(f"`{v}`" for v in sorted(value))
                if isinstance(value, frozenset)
                else str(value)
            )
            out = out.replace(f"{{{name}}}", shown)
    return out


def render() -> str:
    """The reference page, in Markdown."""
    found = env_constants()
    out = [
        "# Configuration",
        "",
        "Generated when the site is built from the modules that define each name; a test "
        "fails when the code has a variable or a key this page does not describe.",
        "",
        "## Environment variables",
        "",
        "Of the rotation function (set them on the Lambda function: the SAM template's "
        "parameters and the CDK construct set the password policy and the endpoint), of "
        "the application client, and of the CDK construct at synth. Invalid values fail "
        "with a [`ConfigurationError`](errors.md#configurationerror) naming the variable.",
        "",
        "| variable | read by | default | meaning | defined in |",
        "|---|---|---|---|---|",
    ]
    for variable, described in ENVIRONMENT.items():
        if variable not in found:
            continue  # the test names it; the page shows only what the code has
        where = found[variable]
        values: dict[str, object] = {}
        for other in [relative for relative, _ in where] + list(SOURCES):
            values = {**constants(other), **values}  # the defining module's constants first
        readers = ", ".join(dict.fromkeys(SOURCES[relative] for relative, _ in where))
        defined = ", ".join(f"`{relative}` (`{constant}`)" for relative, constant in where)
        default = _fill(described.default, values)
        meaning = _fill(described.meaning, values)
        out.append(f"| `{variable}` | {readers} | {default} | {meaning} | {defined} |")
    secret_values = constants(SECRET_MODULE)
    out += [
        "",
        "Passwords are generated locally with Python's `secrets` (the OS CSPRNG) with "
        "GetRandomPassword's character classes: no `secretsmanager:GetRandomPassword` call "
        "or permission.",
        "",
        "## The secret's JSON keys",
        "",
        "The `SecretString` of a rotated secret (and of the master secret `masterarn` names), "
        "exactly as the AWS reference functions expect it, read by "
        f"`parse_postgres_secret` in `{SECRET_MODULE}`. Unknown keys are kept across "
        "rotations. A value that is not JSON, lacks a required key, mistypes one or names "
        "another engine fails createSecret with a "
        "[`SecretFormatError`](errors.md#secretformaterror) naming the key, before anything "
        "is written.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    read = secret_keys_read()
    for key, described in SECRET_KEYS.items():
        if key in read:
            out.append(
                f"| `{key}` | {_fill(described.default, secret_values)} | "
                f"{_fill(described.meaning, secret_values)} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render())
