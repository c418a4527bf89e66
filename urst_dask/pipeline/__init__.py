"""The run as named stages: configuration, graph, cluster, export and quality; every Dask compute lives here."""
