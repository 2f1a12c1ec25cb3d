"""Integration tests against a real (Azurite) storage emulator."""
