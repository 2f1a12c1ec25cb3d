"""Models and pure rules. Standard library and pydantic only: no I/O, no Azure, no Sentry."""
