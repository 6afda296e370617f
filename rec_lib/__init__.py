"""rec_lib: graph-based movie recommendations from MovieLens ratings with PinSage."""

__version__ = "0.1.0"
