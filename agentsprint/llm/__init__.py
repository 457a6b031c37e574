"""Model access: the gateway (budgets, retries, recording), token estimates, prices, the scripted server.

The only package that imports litellm, and only from `provider.py`, which is imported on the first
model call: importing this package (or the gateway) does not load litellm.
"""
