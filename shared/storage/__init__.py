"""Storage ports (Protocols), in-memory fakes, and Azure Table/Queue adapters."""
