"""What `make docs` generates, and how it checks the built site.

The references that must not drift from the code are rendered from it at build time by the
MkDocs hook :mod:`docs.hooks.generate`: the command's reference from its argument parser
(:mod:`docs.hooks.cli_reference`), the environment variables and the secret's JSON keys
from the modules that define them (:mod:`docs.hooks.config_reference`), and the error
catalogue from the error classes' docstrings (:mod:`docs.hooks.error_catalogue`).
:mod:`docs.hooks.check_links` checks the built site's internal links and anchors.
"""
