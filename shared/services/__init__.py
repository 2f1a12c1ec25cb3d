"""Use cases. They take their collaborators as arguments and know nothing of HTTP or Azure."""
