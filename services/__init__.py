"""Use cases: each loads from the store, decides with pure domain functions (geo, cases, access),
writes through the store and records the audit entry. API routes, pages and the CLI call these
and nothing below them (see docs/architecture.md)."""
