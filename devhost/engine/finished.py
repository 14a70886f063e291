"""The last records of instances that finished on this host, so that polling them reads none.

A host holds its task hub's lease, so no one else writes its instances: the record committed
when an instance finished stays the stored one until this host starts it again, rewinds it or
purges it, and each of those forgets it here first.
"""

from __future__ import annotations

from collections import OrderedDict

from ..taskhub.model import InstanceRecord

DEFAULT_LIMIT = 1000  # records kept, the most recently finished


class FinishedRecords:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._records: OrderedDict[str, InstanceRecord] = OrderedDict()

    def remember(self, record: InstanceRecord) -> None:
        """A committed, finished record."""
        self._records.pop(record.instance_id, None)
        self._records[record.instance_id] = record.copy()
        while len(self._records) > self.limit:
            self._records.popitem(last=False)

    def get(self, instance_id: str) -> InstanceRecord | None:
        record = self._records.get(instance_id)
        return record.copy() if record is not None else None

    def forget(self, instance_id: str) -> None:
        self._records.pop(instance_id, None)

    def clear(self) -> None:
        self._records.clear()
