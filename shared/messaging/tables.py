"""The messaging tables every service database holds beside its own.

``outbox``: events written in the same transaction as the state change they describe.
``inbox``: (consumer, event id) of every event a consumer group has applied, written in the
handler's transaction; a second delivery of the same event finds its row and is skipped.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

messaging_metadata = MetaData()

outbox = Table(
    "outbox",
    messaging_metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("message_key", Text, nullable=False),
    # Rows of one key share a lane; one relay at a time publishes a lane, in id order.
    Column("lane", SmallInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("envelope", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_outbox_unpublished", "lane", "id", postgresql_where=text("published_at IS NULL")),
    Index("ix_outbox_published_at", "published_at"),
    # an erasure deletes the rows keyed by the erased cases and keys (shared/erasure.py;
    # revisions: referrals 0013, partners 0011, risk 0009)
    Index("ix_outbox_message_key", "message_key"),
)

inbox = Table(
    "inbox",
    messaging_metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the retention sweep reads the oldest rows first (shared/messaging/inbox.py; revisions:
    # referrals 0020, partners 0015, risk 0014)
    Index("ix_inbox_processed_at", "processed_at"),
)

# What the outbox's insert trigger notifies on commit, and the relay LISTENs to.
OUTBOX_CHANNEL = "upstream_outbox"
