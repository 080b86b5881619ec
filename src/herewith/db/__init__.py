"""Database: async engine and sessions, the declarative Base, Alembic migrations."""

from herewith.db.base import Base, UTCDateTime
from herewith.db.engine import create_engine, create_sessionmaker

__all__ = ["Base", "UTCDateTime", "create_engine", "create_sessionmaker"]
