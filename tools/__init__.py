"""Build and release helpers (not deployed: .funcignore keeps tools/ out of the package)."""
