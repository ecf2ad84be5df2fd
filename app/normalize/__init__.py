"""Pure normalization: carrier payloads become :class:`TrackingEvent` values."""
