"""pink-fsm: a formally specified trading runtime for single-slot strategies."""

__version__ = "0.1.0"
