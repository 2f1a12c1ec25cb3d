"""Everything below the trigger adapters: config, domain, services, storage."""
