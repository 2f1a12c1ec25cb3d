"""Azure Table Storage adapters of the storage ports, one module per port (row layout in
shared/storage/keys.py); counter-like rows go through the one optimistic-row primitive."""
