"""``chatctl bench``: load generation and measurement against any server speaking the chatctl
protocol. ``options`` what a run does and the connections it opens, ``worker`` the
connections of one process, ``processes`` where workers run (this process or children behind
a pipe), ``runner`` the driver (steps, saturation), ``procfs`` the server's CPU and memory,
``stats`` pure accounting, ``summary`` the result's summaries and warnings, ``report`` the
output, ``command`` the glue for the CLI."""
