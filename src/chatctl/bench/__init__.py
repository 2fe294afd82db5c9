"""``chatctl bench``: load generation and measurement against any server speaking the chatctl
protocol (``stats`` pure accounting, ``worker`` the connections of one process, ``runner``
the driver, ``report`` the output, ``command`` the glue for the CLI)."""
