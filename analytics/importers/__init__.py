"""Bulk import of OULAD-shaped tables: `oulad` (the mapping and the entry point
`tables_import`), `oulad_files` (studentVle files), `clicks` (click rows as events
and rollup) and `pg_bulk` (the PostgreSQL bulk engine, also used by ingestion)."""
