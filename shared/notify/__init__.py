"""Adapters that tell people things outside the app (the chat webhook)."""
