"""Expand ``template.yaml`` into plain CloudFormation, offline, as CloudFormation does at deploy.

CloudFormation runs the ``AWS::Serverless-2016-10-31`` transform (the SAM translator) when a
stack is created from the template ``sam package`` writes. This runs the same translator
here, with the code at an S3 URI of your choice, and writes the result: a template with no
``Transform``, for pipelines that scan the processed template (``make policy`` runs checkov
and cfn-lint on it) or that may not use transforms. No AWS call is made: the template uses no
SAM policy templates or managed-policy names that the translator would look up.

Example::

    python -m rotation_tools.sam_expand --code-uri s3://my-bucket/pg-rotation-0.1.0.zip \\
        --out build/cloudformation.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from rotation_tools.checkout import CHECKOUT
from rotation_tools.sam_template import load_template

__all__ = ["expand"]


def expand(template: dict[str, Any], *, code_uri: str, region: str = "us-east-1") -> dict[str, Any]:
    """The plain CloudFormation the SAM translator makes of ``template``.

    ``code_uri`` replaces the local ``CodeUri`` as ``sam package`` would (``s3://bucket/key``).
    ``region`` only picks the partition; the result names regions through ``AWS::Region``.
    """
    if not code_uri.startswith("s3://") or "/" not in code_uri[len("s3://") :]:
        raise ValueError(f"code_uri must look like s3://bucket/key, got {code_uri!r}")
    packaged = json.loads(json.dumps(template))  # a deep copy the translator may change
    packaged["Globals"]["Function"]["CodeUri"] = code_uri
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=region))
    expanded: dict[str, Any] = translator.translate(
        packaged, parameter_values={}, get_managed_policy_map=dict
    )
    return expanded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=CHECKOUT / "template.yaml")
    parser.add_argument("--code-uri", required=True, help="s3://bucket/key of the zipped artifact")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    expanded = expand(load_template(args.template), code_uri=args.code_uri)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(expanded, indent=2) + "\n")
    print(f"wrote {args.out}: {len(expanded['Resources'])} resources, no transform")
    return 0


if __name__ == "__main__":
    sys.exit(main())
