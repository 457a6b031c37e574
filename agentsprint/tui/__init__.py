"""The Textual app: backlog, run monitor, review inbox with diff review, and escalations.

Screens call the same services as the CLI through `agentsprint.tui.data`; store reads run in workers.
"""
