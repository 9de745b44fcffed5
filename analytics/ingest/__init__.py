"""Event ingestion: the events and xAPI endpoints (`api`), their parsing and validation
(`xapi`, `validation`), the batch's reads (`lookups`) and the writes (`services`)."""
