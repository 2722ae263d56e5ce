"""The runtime every service of the platform shares.

Settings that fail fast, JSON logs carrying the request id, RFC 9457 problem
details, health endpoints, the uvicorn runner and the database plumbing live
here, so that identity, orders and the gateway behave alike in production.
"""
