"""Agents: tool schemas, handoff validation, the tool loop, loop guards, and the three roles.

Nothing is imported here so `import agentsprint.agents.schemas` stays cheap.
"""
