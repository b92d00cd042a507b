"""Reducers: every way to reach the small network input behind one interface (``base``),
one module per kind; each registers itself with ``stn.reducers.base.register_reducer``."""
