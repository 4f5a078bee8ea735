"""Runtime support for generated machines."""
