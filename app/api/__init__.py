"""The thin HTTP layer: routes translate requests into calls on intake, store and worker."""
