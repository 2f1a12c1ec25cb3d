"""Local host for function_app.py: what Core Tools does, for machines without it."""
