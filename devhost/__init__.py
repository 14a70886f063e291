"""devhost: a local Azure Functions host with a Durable Task engine, for Python apps."""
