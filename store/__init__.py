"""Database layer: the embedded PostGIS cluster and the ORM models."""
