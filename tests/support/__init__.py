"""Helpers shared by the test suite (real Kafka and S3 clients, factories)."""
