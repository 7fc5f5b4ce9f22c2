"""End-of-study readouts per animal: record, import, compare arms, correlate with BLI."""
