"""Sprint execution: items as durable DBOS workflows, the run queue, review and escalation actions.

The only package that imports DBOS; import its modules lazily from the CLI.
"""
