"""A tiny shop used by the agentsprint demo."""
