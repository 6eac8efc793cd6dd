"""facecls: classify 64x64 face photos as wearing an accessory (0) or not (1)."""

import os

# OpenMP threads that find no work spin for a while before they sleep. Alone on the
# cores that is a little faster, but when another process holds a core, the spinning
# thread waits on it: a 2-thread SimpleCNN step here fell from 365 to 106 img/s next to
# one busy process, against 218 img/s with PASSIVE (and 328-365 alone). Set before torch
# loads its OpenMP runtime, which reads it once; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
