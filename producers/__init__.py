"""Producers: the front door. Provider webhooks in, durable Kafka records out."""
