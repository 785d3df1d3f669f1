"""The documentation's samples, as code.

Every sample longer than a few lines is a file here, included into the pages by
``pymdownx.snippets`` (``mkdocs.yml``), checked by ``ruff`` and ``mypy --strict`` like the
rest of the repository, and run by ``tests/docs/`` where it can run offline (the client's
stacks against the test bed's PostgreSQL and moto, the CDK app with aws-cdk-lib, the
strategy through the conformance check, the shell sequences with the `rotation` command).
"""
