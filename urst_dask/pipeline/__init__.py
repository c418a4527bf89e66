"""The run as named stages; every Dask compute of urst-dask lives in this package.

* :mod:`.config` - :class:`~.config.RunConfig`, the one frozen run configuration;
* :mod:`.inputs` - content, style and weight files; :mod:`.resume` - the resume check;
* :mod:`.conditioning` - thumbnail, style code and statistics, once;
* :mod:`.tiles` - the tile stage's ``map_overlap`` graph; :mod:`.write` - its blocks into the store;
* :mod:`.pyramid` - the NGFF levels; :mod:`.provenance` - parameters, fingerprint, completion;
* :mod:`.cluster` - connecting to a cluster; :mod:`.progress` - computing, and the one progress bar;
* :mod:`.array` - the lazy ``stylize_array``; :mod:`.video` - frame sequences;
* :mod:`.export` and :mod:`.quality` - exports and the ``compare`` figures; :mod:`.synthetic` - test images.

Nothing heavy is imported here: a worker importing one stage does not import the others.
"""
