"""Read ``template.yaml`` the way ``sam local invoke`` does, without SAM or Docker.

Resolves a function's Handler, Timeout, MemorySize and Environment from its properties
merged over ``Globals.Function``, with parameters from their defaults, ``--parameter-overrides``
and an ``--env-vars`` file in SAM's format. Only the intrinsic functions that configuration
values and the roles' policies use are evaluated: Ref, Sub, If, Join, Split, Equals, Not, And,
Or, Condition.

Parameter values are checked as CloudFormation checks them before it creates anything
(``AllowedValues``, ``AllowedPattern``: for a ``CommaDelimitedList``, each value), so a
value CloudFormation would refuse is refused here too. :func:`resolve_resource` gives a
resource's properties as a stack deployed with given parameters would hold them (the roles'
policies, for checking what a parameter lets reach a ``Resource`` through a ``Ref``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

__all__ = [
    "FunctionConfig",
    "TemplateError",
    "load_template",
    "resolve_function",
    "resolve_resource",
]

_NO_VALUE = object()
_MISSING = object()
_SUB = re.compile(r"\$\{([^}!]+)\}")


class UnknownFunctionError(ValueError):
    """The template has no function of that logical id (a usage error: exit 2).

    Fix: name one of the template's functions (``SingleUserFunction``, ``MultiUserFunction``),
    or pass the right template with ``--template``.
    """


class TemplateError(Exception):
    """The template, a parameter or an env-vars file cannot be used by ``rotation invoke``: a
    parameter with no value, a value the template refuses, a file that is not JSON.

    Fix: as the message says: the ``--parameter-overrides KEY=VALUE`` or the env-vars file it
    names.
    """


class _Loader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation's short tags into their long form."""


def _construct(loader: _Loader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_Loader.add_multi_constructor("!", _construct)


def load_template(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506  # SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


@dataclass
class FunctionConfig:
    logical_id: str
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str] = field(default_factory=dict)


class _Evaluator:
    def __init__(
        self, template: dict[str, Any], parameters: Mapping[str, Any], region: str | None = None
    ) -> None:
        self.template = template
        region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        self.refs: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
            "AWS::NoValue": _NO_VALUE,
            **parameters,
        }
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.value(definitions[name]))
        return self._conditions[name]

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            intrinsic = self._intrinsics.get(key)
            if intrinsic is not None:
                return intrinsic(self, arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} cannot be resolved locally")
        resolved = ((k, self.value(v)) for k, v in node.items())
        return {k: v for k, v in resolved if v is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        if name not in self.refs:
            raise TemplateError(f"!Ref {name} cannot be resolved locally")
        if self.refs[name] is _MISSING:
            raise TemplateError(
                f"parameter {name} has no default: pass --parameter-overrides {name}=..."
            )
        return self.refs[name]

    def if_(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.value(when_true if self.condition(name) else when_false)

    def join(self, arg: list[Any]) -> str:
        separator, items = arg
        return str(separator).join(str(i) for i in self.value(items))

    _intrinsics: ClassVar[dict[str, Callable[[_Evaluator, Any], Any]]] = {
        "Ref": ref,
        "Condition": condition,
        "Fn::If": if_,
        "Fn::Join": join,
        "Fn::Split": lambda self, arg: str(self.value(arg[1])).split(str(arg[0])),
        "Fn::Sub": lambda self, arg: self.sub(arg),
        "Fn::Equals": lambda self, arg: str(self.value(arg[0])) == str(self.value(arg[1])),
        "Fn::Not": lambda self, arg: not self.value(arg[0]),
        "Fn::And": lambda self, arg: all(self.value(a) for a in arg),
        "Fn::Or": lambda self, arg: any(self.value(a) for a in arg),
    }

    def sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if name not in self.refs:
                raise TemplateError(f"${{{name}}} cannot be resolved locally")
            return str(self.refs[name])

        return _SUB.sub(replace, text)


def _parameters(template: dict[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    declared = template.get("Parameters", {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        raw = overrides.get(name, spec.get("Default"))
        if raw is None:
            values[name] = _MISSING  # an error only if the function's configuration uses it
            continue
        raw = str(raw)
        value = raw.split(",") if spec.get("Type") == "CommaDelimitedList" else raw
        _check_parameter(name, spec, value)
        values[name] = value
    return values


def _check_parameter(name: str, spec: Mapping[str, Any], value: str | list[str]) -> None:
    """Refuse what CloudFormation refuses: a value outside ``AllowedValues``, or one that
    ``AllowedPattern`` does not match entirely (each value of a list)."""
    allowed = spec.get("AllowedValues")
    pattern = spec.get("AllowedPattern")
    for item in value if isinstance(value, list) else [value]:
        if allowed is not None and item not in [str(a) for a in allowed]:
            refused = f"must be one of {', '.join(str(a) for a in allowed)}"
        elif pattern is not None and re.fullmatch(str(pattern), item) is None:
            refused = str(spec.get("ConstraintDescription") or f"must match {pattern}")
        else:
            continue
        raise TemplateError(f"parameter {name}: {item!r} is refused: {refused}")


def _env_file(path: Path | None, logical_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """SAM's --env-vars format: ``{"Parameters": {...}, "<LogicalId>": {...}}``."""
    if path is None:
        return {}, {}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TemplateError(f"cannot read env-vars file {path}: {exc}") from exc
    shared = {k: str(v) for k, v in document.get("Parameters", {}).items()}
    own = {k: str(v) for k, v in document.get(logical_id, {}).items()}
    return shared, own


def resolve_function(
    template: dict[str, Any],
    logical_id: str,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    env_vars: Path | None = None,
) -> FunctionConfig:
    resources = template["Resources"]
    functions = sorted(
        name for name, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"
    )
    if logical_id not in functions:
        raise UnknownFunctionError(
            f"no function {logical_id!r} in the template; it has {', '.join(functions)}"
        )
    evaluator = _Evaluator(template, _parameters(template, parameter_overrides or {}))
    defaults = template.get("Globals", {}).get("Function", {})
    properties = resources[logical_id].get("Properties", {})
    merged = {**defaults, **properties}
    variables = {
        **defaults.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    environment = {k: str(v) for k, v in evaluator.value(variables).items()}
    shared, own = _env_file(env_vars, logical_id)
    # As in SAM: the file only overrides variables the function declares.
    for key, value in {**shared, **own}.items():
        if key in environment:
            environment[key] = value
    return FunctionConfig(
        logical_id=logical_id,
        handler=str(evaluator.value(merged["Handler"])),
        timeout_s=int(evaluator.value(merged.get("Timeout", 3))),
        memory_mb=int(evaluator.value(merged.get("MemorySize", 128))),
        environment=environment,
    )


def resolve_resource(
    template: dict[str, Any],
    logical_id: str,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    region: str | None = None,
) -> dict[str, Any] | None:
    """The resource's ``Properties`` as a stack created with these parameters holds them:
    references, conditions and ``AWS::NoValue`` resolved. None when the resource's own
    ``Condition`` leaves it out. Raises :class:`TemplateError` for a parameter value
    CloudFormation would refuse, or one that is needed and not given."""
    resources = template["Resources"]
    if logical_id not in resources:
        raise TemplateError(f"no resource {logical_id!r} in the template")
    evaluator = _Evaluator(template, _parameters(template, parameter_overrides or {}), region)
    resource = resources[logical_id]
    if "Condition" in resource and not evaluator.condition(resource["Condition"]):
        return None
    properties: dict[str, Any] = evaluator.value(resource.get("Properties", {}))
    return properties
