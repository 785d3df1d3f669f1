"""PostgreSQL rotation strategies and the Lambda entrypoints that wire them to the framework."""
