"""Tracking relay: carrier webhooks in, VTEX OMS invoice tracking out.

The packages follow the flow: ``ingest`` (HTTP acceptance and signatures) →
``normalize`` (pure carrier adapters) → ``store`` (the only owner of SQL) →
``deliver`` (VTEX body, retry decisions, client and worker). ``api`` is the thin
HTTP layer and ``cli`` the command line.
"""
