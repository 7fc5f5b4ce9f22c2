"""Analysis outputs of the service: plots (and, later, the analysis API) over ``cohorts``."""
