"""All file and network I/O: images, output stores, weights.  Compute code imports none of it."""
