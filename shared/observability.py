"""Observability: JSON logs carrying the trace, and the Prometheus metrics of every process."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.context import current_trace
from shared.redaction import safe_traceback

HTTP_REQUESTS = Counter(
    "upstream_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "upstream_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)
EVENTS_PUBLISHED = Counter(
    "upstream_events_published_total", "Events published by the outbox relay", ["topic"]
)
EVENTS_WITHHELD = Counter(
    "upstream_events_withheld_total",
    "Events a relay never sent: written before their subject's keys were forgotten (erasure)",
)
PUBLISH_FAILURES = Counter(
    "upstream_outbox_publish_failures_total", "Relay passes that failed to reach the broker"
)
OUTBOX_BACKLOG = Gauge("upstream_outbox_backlog", "Outbox events not yet published")
EVENTS_CONSUMED = Counter(
    "upstream_events_consumed_total",
    "Events a consumer group finished with, by outcome (applied, duplicate, ignored, erased)",
    ["consumer", "outcome"],
)
EVENTS_FAILED = Counter(
    "upstream_events_failed_total", "Handler attempts that raised", ["consumer"]
)
EVENTS_DEAD_LETTERED = Counter(
    "upstream_events_dead_lettered_total", "Events sent to a dead-letter topic", ["consumer"]
)
# An event's journey, hop by hop: written → published (the relay), published → in a
# consumer's hands (the broker and the fetch), in hand → applied and committed (the handler).
HOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
EVENT_PUBLISH_DELAY = Histogram(
    "upstream_event_publish_delay_seconds",
    "From the start of the transaction that wrote an event to the broker acknowledging it",
    ["topic"],
    buckets=HOP_BUCKETS,
)
EVENT_FETCH_DELAY = Histogram(
    "upstream_event_fetch_delay_seconds",
    "From an event's publication (its record's timestamp) to a consumer starting on it",
    ["consumer"],
    buckets=HOP_BUCKETS,
)
EVENT_HANDLING = Histogram(
    "upstream_event_handling_seconds",
    "From a consumer starting on an event to its transaction committed (or it skipped, parked)",
    ["consumer"],
    buckets=HOP_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "upstream_consumer_lag", "Records behind the partition end", ["consumer", "topic", "partition"]
)

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace = current_trace()
        if trace is not None:
            entry["correlation_id"] = trace.correlation_id
            entry["causation_id"] = trace.causation_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts carry SQL parameters and input values: log their shape only.
            entry["exception"] = safe_traceback(record.exc_info[1])
        return json.dumps(entry, default=str)


# Held at WARNING whatever the level: aiokafka's DEBUG lines print whole record values
# (personal data), and access logs repeat every request's path and query.
QUIET_LOGGERS = ("aiokafka", "uvicorn.access")


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
