"""A broker added the way the registry says: its module (here, the class below) and its
registry entry (:data:`ENTRY`), nothing else. It is the memory broker with one option,
``--label``, that it only keeps. tests/broker/test_adding_a_broker.py registers it and runs
the conformance suite and ``chatctl serve`` on it.

As a pytest plugin (``-p broker_plugin_example``) it registers itself before collection.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatctl.broker.memory import MemoryBroker
from chatctl.broker.registry import BROKERS, BrokerEntry, TestTarget
from chatctl.setting import Setting


class LabelledMemoryBroker(MemoryBroker):
    """The memory broker, with a label."""

    def __init__(self, *, label: str = "", **common: Any) -> None:
        super().__init__(**common)
        self.label = label


ENTRY = BrokerEntry(
    "labelled",
    ("labelled",),
    "support.broker_plugin_example:LabelledMemoryBroker",
    "the memory broker with a label (a test's example)",
    test=lambda services: TestTarget("labelled:", {"label": services.namespace()}),
    options=(Setting("label", "A label the broker keeps.", section="Storage", default=""),),
    takes_url=False,
    persistent=False,
)


def pytest_configure(config: pytest.Config) -> None:
    BROKERS.append(ENTRY)
