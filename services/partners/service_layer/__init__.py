"""The partners use cases, one module per aggregate: offers (the partner inbox), placement
(routing a case's needs), directory (organisations, services, agreements) and webhooks."""
