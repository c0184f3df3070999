"""The scribe's use cases: Grafeas notes and occurrences, the change feed, ingestion of the
documents pipelines emit, the OSV scanner and registry evidence synchronisation."""
