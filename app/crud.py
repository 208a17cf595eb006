"""The reads and audited writes every store of configuration repeats: one row or 404, create, update, delete.

Notification policies, silences, maintenance windows, trigger rules and response templates are
each a table the API, the CLI and the console write through their own store module; what those
stores share (the ``NotFound`` message, the audit row with what a change replaced) lives here so
it reads the same everywhere. What differs (validation, names that must be free, which columns a
write sets) stays in each store. Every function is called inside a transaction
(:func:`app.db.in_transaction`), so a write and its audit row commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import peewee

from . import audit
from .errors import NotFound

M = TypeVar("M", bound=peewee.Model)
#: How a store shows a row (the API's body: what the audit log keeps as ``before``/``after``).
Show = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Table(Generic[M]):
    """One table of configuration as its store reads and writes it.

    Parameters:
      model: The peewee model (its primary key is ``id``).
      noun: The row's name in messages (``"notification policy"`` → "no notification policy 7").
      subject: The audit subject's kind (``"notification_policy"`` → ``notification_policy:7``).
      show: The row as the API shows it, kept in the audit rows of :meth:`create`, :meth:`update`
        and :meth:`delete`.
      key: The column :meth:`get` looks a row up by (default the primary key; agents go by ``name``).
    """

    model: type[M]
    noun: str
    subject: str
    show: Show | None = None
    key: str | None = None

    def get(self, row_id: Any) -> M:
        """Raises:
        NotFound: there is no row ``row_id``.
        """
        column = self.model._meta.primary_key if self.key is None else getattr(self.model, self.key)
        row = self.model.get_or_none(column == row_id)
        if row is None:
            raise NotFound(f"no {self.noun} {row_id}")
        return row

    def subject_of(self, row_id: Any) -> str:
        """The audit subject of row ``row_id`` (``<kind>:<id>``)."""
        return f"{self.subject}:{row_id}"

    def create(self, columns: dict[str, Any], *, actor: str, action: audit.Action) -> dict[str, Any]:
        """Store a row with ``columns``; audit it as ``{"after": shown}``; return it as the API shows it."""
        row = self.model.create(**columns)
        shown = self._show(row)
        audit.record(action, actor=actor, subject=self.subject_of(row.get_id()), details={"after": shown})
        return shown

    def update(
        self,
        row_id: Any,
        columns: dict[str, Any],
        *,
        actor: str,
        action: audit.Action,
        check: Callable[[M], None] | None = None,
        show: Show | None = None,
    ) -> dict[str, Any]:
        """Set ``columns`` on row ``row_id``; audit ``{"before", "after"}``; return it as the API shows it.

        Parameters:
          check: Called with the row before it changes; raises to refuse the change (a name taken,
            a silence expired).
          show: How to show it this time (default: the table's).

        Raises:
          NotFound: there is no row ``row_id``. Whatever ``check`` raises.
        """
        show = show or self._show
        row = self.get(row_id)
        if check is not None:
            check(row)
        before = show(row)
        self.model.update(**columns).where(self.model._meta.primary_key == row_id).execute()
        after = show(self.get(row_id))
        audit.record(action, actor=actor, subject=self.subject_of(row_id), details={"before": before, "after": after})
        return after

    def delete(self, row_id: Any, *, actor: str, action: audit.Action) -> None:
        """Delete row ``row_id``; the audit row keeps what it was (``{"before": shown}``).

        Raises:
          NotFound: there is no row ``row_id``.
        """
        row = self.get(row_id)
        before = self._show(row)
        row.delete_instance()
        audit.record(action, actor=actor, subject=self.subject_of(row_id), details={"before": before})

    def _show(self, row: M) -> dict[str, Any]:
        if self.show is None:
            raise TypeError(f"the {self.noun} table shows no rows: give it show=")
        return self.show(row)
