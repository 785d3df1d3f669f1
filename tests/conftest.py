"""Fixtures live in their own modules (psycopg's fix_*.py layout)."""

pytest_plugins = [
    "tests.fix_postgres",
    "tests.fix_aws",
    "tests.fix_rotation",
    "tests.fix_multi",
    "tests.fix_fake_server",
    "tests.fix_race",
    "tests.fix_silent",
    "tests.fix_logs",
    "tests.fix_lossy_proxy",
    "tests.fix_sm_endpoint",
]
