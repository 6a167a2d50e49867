"""The referrals service's data access: tables, and the queries of each aggregate."""

from sqlalchemy.engine import RowMapping

Row = RowMapping
"""A row as the queries return it: read by column name."""
