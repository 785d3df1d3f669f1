"""What a deployment of the rotation function is made of, described once for both ways of
deploying it: the ``rotation`` command (its policy, plan and doctor checks) and the CDK
construct (``rotation_cdk``), which imports these modules; ``template.yaml`` is checked
against them by the tests.

- :mod:`~rotation_tools.deploy.iam_policy`: the function's least-privilege IAM policy;
- :mod:`~rotation_tools.deploy.dashboard`: the CloudWatch dashboard;
- :mod:`~rotation_tools.deploy.ops_resources`: the alarms and their reasons;
- :mod:`~rotation_tools.deploy.rotation_window`: Secrets Manager's schedule rules;
- :mod:`~rotation_tools.deploy.build_artifact`: the Lambda artifact, without Docker.
"""

# Nothing re-exported: the command and the construct import the module they use.
__all__: list[str] = []
