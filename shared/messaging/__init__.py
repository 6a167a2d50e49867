"""Reliable messaging: transactional outbox, relay, idempotent consumer runner, Kafka admin."""
