"""The agent: the embedded knowledge-base agent and the client for the external agent service."""
