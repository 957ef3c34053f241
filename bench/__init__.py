"""Benchmarks of the queue and the API against the real PostgreSQL and Kafka."""
