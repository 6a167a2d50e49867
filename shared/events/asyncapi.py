"""An AsyncAPI 3.0 document generated from an event registry: the registry is the source."""

from __future__ import annotations

import re
from typing import Any

from shared.events.envelope import STRUCTURED_CONTENT_TYPE
from shared.events.registry import EventRegistry, EventType


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _message_name(event_type: EventType) -> str:
    return _key(event_type.name.removeprefix("uk.upstream."))


def _message(event_type: EventType, schemas: dict[str, Any]) -> dict[str, Any]:
    data_schema = event_type.payload.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(data_schema.pop("$defs", {}))
    schemas[event_type.payload.__name__] = data_schema
    return {
        "name": event_type.name,
        "title": event_type.payload.__name__,
        "summary": event_type.description,
        "contentType": STRUCTURED_CONTENT_TYPE,
        "payload": {
            "type": "object",
            "description": "CloudEvents 1.0 envelope, structured JSON mode",
            "required": ["specversion", "id", "source", "type", "time", "data"],
            "properties": {
                "specversion": {"const": "1.0"},
                "id": {"type": "string"},
                "source": {"type": "string"},
                "type": {"const": event_type.name},
                "subject": {"type": "string", "description": "the aggregate (case) id"},
                "time": {"type": "string", "format": "date-time"},
                "datacontenttype": {"const": "application/json"},
                "correlationid": {"type": "string"},
                "causationid": {"type": "string"},
                "partitionkey": {"type": "string"},
                "dataclassification": {"const": event_type.classification.value},
                "sealedwith": {
                    "type": "string",
                    "description": "on the wire: the id of the data key the event is sealed under",
                },
                "data": {"$ref": f"#/components/schemas/{event_type.payload.__name__}"},
            },
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "the data key id of the event's aggregate (its sealedwith)",
                }
            }
        },
    }


def asyncapi_document(
    registry: EventRegistry, *, title: str = "Upstream events", version: str = "1.0.0"
) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic in registry.topics:
        channels[_key(topic.name)] = {
            "address": topic.name,
            "description": topic.description,
            "messages": {},
        }
        if topic.retention_ms is not None:
            channels[_key(topic.name)]["bindings"] = {
                "kafka": {"topicConfiguration": {"retention.ms": topic.retention_ms}}
            }
    for event_type in registry.event_types:
        channel_key = _key(event_type.topic.name)
        name = _message_name(event_type)
        messages[name] = _message(event_type, schemas)
        channels[channel_key]["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        operations[f"send_{name}"] = {
            "action": "send",
            "summary": event_type.description,
            "channel": {"$ref": f"#/channels/{channel_key}"},
            "messages": [{"$ref": f"#/channels/{channel_key}/messages/{name}"}],
        }
        if (bulk := registry.bulk_lane_of(event_type.topic)) is not None:
            bulk_key = _key(bulk.name)
            channels[bulk_key]["messages"][name] = {"$ref": f"#/components/messages/{name}"}
            operations[f"send_{name}_bulk"] = {
                "action": "send",
                "summary": f"{event_type.description} (bulk work)",
                "channel": {"$ref": f"#/channels/{bulk_key}"},
                "messages": [{"$ref": f"#/channels/{bulk_key}/messages/{name}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Events exchanged by Upstream's services over Kafka. Each record's "
            "value is a CloudEvent in structured JSON mode, as described here before it is "
            "sealed: on the wire, data, subject, partitionkey, correlationid and causationid "
            "travel as one AES-256-GCM ciphertext (data: {sealed: base64}) under the data key "
            "of the event's aggregate, named by the sealedwith attribute, which is also the "
            "record's key and partitionkey (docs/events.md, Sealed on the wire).",
        },
        "defaultContentType": STRUCTURED_CONTENT_TYPE,
        "servers": {
            "development": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the embedded development broker (make run)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
