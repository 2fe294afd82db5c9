"""``chatctl bench chaos``: real servers, clients and a seeded schedule of faults; every
history checked against docs/protocol.md's rules (:mod:`.check`, pure) — see
docs/reliability.md."""
