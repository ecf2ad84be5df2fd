"""Acceptance of carrier webhooks: size, authentication, parsing, storing."""
