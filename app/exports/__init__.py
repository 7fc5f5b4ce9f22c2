"""Study exports: everything a paper needs from one study (measurements, summaries, Prism
tables, stored comparisons, overlays, the audit trail and a manifest) as ONE ZIP, built by a
durable job (``POST /studies/{id}/exports``), one committed file per step."""
