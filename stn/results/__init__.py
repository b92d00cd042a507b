"""Results: the record's layout (``record``: typed sections, schema versions, validation),
its files (``store``: atomic write, read, load a folder) and the runs frame every table and
figure reads (``collect``)."""
