"""The ``rotation`` command (:mod:`rotation_tools.cli`) and the deployment descriptions it
shares with the CDK construct (:mod:`rotation_tools.deploy`). A command, not a library:
nothing is re-exported."""

__all__: list[str] = []
