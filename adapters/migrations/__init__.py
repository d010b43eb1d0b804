"""The alembic migrations of the SQL store (run by ``xieshang.adapters.sql.upgrade``)."""
