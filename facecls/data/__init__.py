"""The data side of the pipeline: the archive and its checks, the check stage's manifest, image
and label files, decoding many images into one array, the index stage (label, split, decode once),
`facecls extract`, and the readers of the prepared set."""
