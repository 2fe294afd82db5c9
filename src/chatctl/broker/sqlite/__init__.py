"""The SQLite broker, the default of ``chatctl serve``: :class:`SQLiteBroker`.

``broker.py`` the broker (rooms in memory, publishes, retention), ``dispatch.py`` the loop's
end of the writer, ``writer.py`` the thread that owns the connection, ``ops.py`` the work
it is given, ``store.py`` the queries, ``schema.py`` the file (schema, lock, opening),
``location.py`` URLs and paths.
"""

from chatctl.broker.sqlite.broker import SQLiteBroker

__all__ = ["SQLiteBroker"]
