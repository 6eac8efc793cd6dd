"""Draw the demo archive: seeded 64x64 face drawings in the exercise's zip layout.

The real exercise photos cannot ship with the project, so ``data/demo-faces.zip``
is drawn here instead.  Regenerating with the same arguments gives the same
bytes (``python -m facecls.tools.demo``), so the committed archive can be checked.

Each image gets its own random stream derived from (seed, split, index): the
first images of a small archive equal those of a big one, and nothing about an
image depends on how many others are drawn.
"""
