"""Datasets on disk: the shard format, preprocessing, and the sources that write it."""
