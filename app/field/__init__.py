"""Correcting which animals are in an acquisition's field (wrong order, a missing mouse)."""
