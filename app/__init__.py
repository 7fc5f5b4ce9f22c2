"""osteolux: the service (FastAPI) around the imaging and cohorts cores."""

__version__ = "0.1.0"
