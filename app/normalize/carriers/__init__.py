"""One pure adapter per carrier format: ``parse(payload, context) -> list[ShipmentUpdate]``."""
