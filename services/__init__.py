"""Upstream's three services: referrals, risk and partners. Each has the same shape:

- ``bootstrap.py``  the composition root: what the service is made of (``SERVICE``)
- ``settings.py``   its settings class
- ``domain/``       plain-Python rules, no I/O
- ``adapters/``     its tables (SQLAlchemy) and data access
- ``handlers.py``   the events it consumes: ``EVENT_HANDLERS``
- ``api/``          its HTTP routes
- ``migrations/``   its Alembic revisions, for its own database
Run it with ``python -m services.<name> api|worker|migrate``.
"""
