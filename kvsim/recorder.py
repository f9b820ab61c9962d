"""Per-step state, recorded column by column without a Python object per row."""

from __future__ import annotations

from array import array

import numpy as np


class StepRecorder:
    """Collects rows of integers into a packed int64 buffer and hands back columns.

    Owns the buffer and the column names; knows nothing of allocators or engines. The hot
    path appends a row's values to a short staging list (``extend``, the cheapest append
    CPython has); the caller calls :meth:`pack` now and then (every few thousand rows) to
    move them into the int64 buffer (8 bytes a value), so memory stays small however long
    the run. :meth:`columns` returns one numpy array per field.

    >>> rec = StepRecorder(("step", "stored"))
    >>> rec.extend((0, 5)); rec.extend((1, 7))
    >>> {k: v.tolist() for k, v in rec.columns().items()}
    {'step': [0, 1], 'stored': [5, 7]}
    """

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = tuple(fields)
        self._packed = array("q")
        self._staging: list[int] = []
        #: Append values (a whole row, or a row in pieces) to the staging list.
        self.extend = self._staging.extend

    def pack(self) -> None:
        """Move the staged values into the packed buffer."""
        self._packed.fromlist(self._staging)
        self._staging.clear()

    def __len__(self) -> int:
        return (len(self._packed) + len(self._staging)) // len(self.fields)

    def columns(self) -> dict[str, np.ndarray]:
        self.pack()
        if len(self._packed) % len(self.fields):
            raise ValueError("a row was recorded with the wrong number of values")
        rows = np.frombuffer(self._packed, dtype=np.int64).reshape(-1, len(self.fields))
        return {name: rows[:, j].copy() for j, name in enumerate(self.fields)}
