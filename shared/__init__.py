"""Upstream's common library.

Settings, events, outbox and inbox, the consumer runner, auth, observability.
"""
