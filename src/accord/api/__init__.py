"""The HTTP API (FastAPI) with per-party keys, and the web portal."""
