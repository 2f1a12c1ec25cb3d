"""Adapters of the storage ports (shared/ports.py): in-memory fakes, Azure Table/Queue adapters,
the `limits` backend; table and queue names and their provisioning."""
