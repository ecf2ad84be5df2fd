"""The operator console at ``/console`` (SPEC §10): server-rendered pages over the store's
read models, signed-in sessions, and the counts its Overview shows."""
