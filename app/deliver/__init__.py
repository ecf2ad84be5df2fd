"""Delivery to VTEX: the body, the retry decision, the client and the worker."""
