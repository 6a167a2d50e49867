"""The partners service's own tables (its messaging tables come from ``shared``)."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
