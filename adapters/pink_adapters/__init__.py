"""Venue adapters (sim, BingX): I/O at the edges. Filled in by the runtime issues."""
