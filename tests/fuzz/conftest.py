"""The fuzz tier: each service's OpenAPI document, fuzzed by schemathesis in-process on a
database of the module's own (``harness``); and the cross-tenant write probes."""
