"""The data side of the pipeline: the archive and its checks, image and label files, the
index stage (label, split, decode once) and the readers of the prepared set."""
