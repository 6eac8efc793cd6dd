"""facecls: classify 64x64 face photos as wearing an accessory (0) or not (1)."""

__version__ = "0.1.0"
