"""`make bench`: benchmarks against a fresh Azurite, written to bench/results.json (SPEC §11)."""
