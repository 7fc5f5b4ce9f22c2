"""Interval-censored metastasis onset and several bone sites per mouse."""
