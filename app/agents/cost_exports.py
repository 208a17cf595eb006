"""Reading cost and usage exports: AWS CUR (2.0 and legacy columns), GCP billing export, Azure cost management.

Each provider's export becomes the same :class:`CostLine` (one billed line: account, service,
resource, day, cost, usage), read as a stream so a month's CUR of millions of lines never sits
in memory. Files are CSV (``.csv``, gzip-compressed ``.csv.gz``) or JSON (a JSON array or
newline-delimited JSON, as BigQuery's extract writes it, gzip allowed) or Parquet (``.parquet``, as
AWS Data Exports write CUR 2.0 by default: ``*.snappy.parquet`` parts under a billing period's
folder). Parquet is read a record batch at a time, only the columns a provider's lines are made of,
and becomes the same rows as the CSV: timestamps, numbers and maps arrive typed and are read as such.

A line that cannot be read (no date, a cost that is no number) is not dropped silently: it is
counted by reason in :attr:`ExportReader.skipped` and shown in the report.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import InvalidInput

PROVIDERS = ("aws", "gcp", "azure")
#: File names read in an export directory (others are ignored).
SUFFIXES = (".csv", ".csv.gz", ".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".parquet")
#: Rows per Parquet record batch: bounds the memory a file of millions of lines takes while read.
PARQUET_BATCH = 16_384
#: A unit billed by elapsed time (hours, seconds, months; GB-Mo too) rather than by what was used.
_TIME_UNIT = re.compile(r"hour|hrs?\b|second|month|-mo\b|\bmo\b|\bday", re.I)
#: Capacity units billed per hour that still measure use (an idle load balancer has 0 LCU-Hrs).
_USE_UNIT = re.compile(r"lcu|request|operation|query|invocation", re.I)
#: AWS usage types that name an idle resource outright.
_IDLE_USAGE_TYPE = re.compile(r"IdleAddress|Unattached", re.I)


@dataclass(frozen=True, slots=True)
class CostLine:
    """One line of an export, as every provider's becomes.

    ``metered`` says the line measures use (requests, bytes, I/O, LCU) rather than time a resource
    existed: a resource whose metered lines sum to ~0 while it costs money is idle. ``one_off`` marks
    a tax, fee, refund or credit line: counted in totals, left out of the daily series that
    anomalies are looked for in (a month's tax lands on its first day).
    """

    provider: str
    account: str
    service: str
    resource: str
    day: date
    cost: float
    usage: float = 0.0
    metered: bool = False
    idle_marker: bool = False
    one_off: bool = False


def snake(column: str) -> str:
    """Legacy CUR ``lineItem/UnblendedCost`` -> CUR 2.0 ``line_item_unblended_cost``."""
    column = column.strip().lstrip("\ufeff").replace("/", "_").replace(":", "_")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column).lower()


@functools.lru_cache(maxsize=1024)
def metered(unit: str) -> bool:
    return bool(unit) and (not _TIME_UNIT.search(unit) or bool(_USE_UNIT.search(unit)))


def _number(value: Any, name: str) -> float:
    if value is None or value == "":
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is no number") from None


def day_of(value: Any, name: str) -> date:
    """ISO dates and times (``2026-11-01T00:00:00Z``, BigQuery's ``2026-11-01 00:00:00 UTC``) and ``MM/DD/YYYY``."""
    if isinstance(value, datetime):  # Parquet's timestamps: the day where they were written (UTC for CUR)
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    if not text:
        raise ValueError(f"{name} is missing")
    day = _parsed_day(text)
    if day is None:
        raise ValueError(f"{name} is no date")
    return day


@functools.lru_cache(maxsize=4096)
def _parsed_day(text: str) -> date | None:
    """PERF: an export repeats a few dozen distinct times over millions of lines."""
    try:
        if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", text):
            return datetime.strptime(text, "%m/%d/%Y").date()
        return datetime.fromisoformat(text.removesuffix(" UTC").replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _first(row: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


@functools.lru_cache(maxsize=4096)
def _idle(usage_type: str) -> bool:
    """PERF: usage types repeat (a few hundred per bill); this and :func:`metered` are cached."""
    return bool(_IDLE_USAGE_TYPE.search(usage_type))


def aws_line(row: Mapping[str, Any]) -> CostLine | None:
    """A CUR line (columns already in CUR 2.0 names, see :func:`snake`)."""
    usage_type = str(row.get("line_item_usage_type") or "")
    unit = str(row.get("pricing_unit") or "")
    is_usage = str(row.get("line_item_line_item_type") or "Usage") in ("Usage", "DiscountedUsage",
                                                                      "SavingsPlanCoveredUsage")  # fmt: skip
    return CostLine(
        provider="aws", account=str(row.get("line_item_usage_account_id") or ""),
        service=str(row.get("line_item_product_code") or "unknown"), resource=str(row.get("line_item_resource_id") or ""),
        day=day_of(row.get("line_item_usage_start_date"), "line_item_usage_start_date"),
        cost=_number(row.get("line_item_unblended_cost"), "line_item_unblended_cost"),
        usage=_number(row.get("line_item_usage_amount"), "line_item_usage_amount") if is_usage else 0.0,
        metered=is_usage and metered(unit), idle_marker=_idle(usage_type), one_off=not is_usage,
    )  # fmt: skip


def _credits(value: Any) -> float:
    """The sum of a GCP line's credits (negative amounts), from JSON or a CSV cell holding JSON."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("credits is not JSON") from None
    if not isinstance(value, list):
        return 0.0
    return sum(_number(c.get("amount"), "credits.amount") for c in value if isinstance(c, dict))


def gcp_line(row: Mapping[str, Any]) -> CostLine | None:
    """A BigQuery billing export line (nested JSON flattened to ``service.description`` ...); cost net of credits."""
    unit = str(row.get("usage.pricing_unit") or row.get("usage.unit") or "")
    return CostLine(
        provider="gcp", account=str(row.get("project.id") or row.get("billing_account_id") or ""),
        service=str(row.get("service.description") or "unknown"), resource=str(row.get("resource.name") or ""),
        day=day_of(row.get("usage_start_time"), "usage_start_time"),
        cost=_number(row.get("cost"), "cost") + _credits(row.get("credits")),
        usage=_number(_first(row, ("usage.amount_in_pricing_units", "usage.amount")), "usage.amount"),
        metered=metered(unit),
    )  # fmt: skip


def azure_line(row: Mapping[str, Any]) -> CostLine | None:
    """A cost management line: the current columns (``CostInBillingCurrency``, ``Date``) or the older ones
    (``PreTaxCost``, ``UsageDateTime``, ``SubscriptionGuid``, ``InstanceId``)."""
    unit = str(row.get("UnitOfMeasure") or "")
    return CostLine(
        provider="azure", account=str(_first(row, ("SubscriptionId", "SubscriptionGuid")) or ""),
        service=str(_first(row, ("MeterCategory", "ConsumedService")) or "unknown"),
        resource=str(_first(row, ("ResourceId", "InstanceId")) or ""),
        day=day_of(_first(row, ("Date", "UsageDateTime", "UsageDate")), "Date"),
        cost=_number(_first(row, ("CostInBillingCurrency", "PreTaxCost", "Cost")), "CostInBillingCurrency"),
        usage=_number(_first(row, ("Quantity", "UsageQuantity")), "Quantity"), metered=metered(unit),
    )  # fmt: skip


#: Per provider: the (read) names of the columns its lines are made of; a Parquet file is read for these only.
COLUMNS: dict[str, frozenset[str]] = {
    "aws": frozenset({"line_item_usage_type", "pricing_unit", "line_item_line_item_type", "line_item_usage_account_id",
                      "line_item_product_code", "line_item_resource_id", "line_item_usage_start_date",
                      "line_item_unblended_cost", "line_item_usage_amount"}),
    "gcp": frozenset({"usage.pricing_unit", "usage.unit", "project.id", "billing_account_id", "service.description",
                      "resource.name", "usage_start_time", "cost", "credits", "usage.amount_in_pricing_units",
                      "usage.amount"}),
    "azure": frozenset({"UnitOfMeasure", "SubscriptionId", "SubscriptionGuid", "MeterCategory", "ConsumedService",
                        "ResourceId", "InstanceId", "Date", "UsageDateTime", "UsageDate", "CostInBillingCurrency",
                        "PreTaxCost", "Cost", "Quantity", "UsageQuantity"}),
}  # fmt: skip
#: Per provider: how a row's column names are read, the columns a file must have, and the row's reader.
#: A required entry is a tuple of alternatives (one of them suffices).
FORMATS: dict[str, tuple[Callable[[str], str], tuple[tuple[str, ...], ...], Callable[[Mapping[str, Any]], CostLine | None]]] = {
    "aws": (snake, (("line_item_unblended_cost",), ("line_item_usage_start_date",), ("line_item_product_code",)), aws_line),
    "gcp": (str.strip, (("cost",), ("usage_start_time",), ("service.description",)), gcp_line),
    "azure": (lambda c: c.strip().lstrip("\ufeff"),
              (("CostInBillingCurrency", "PreTaxCost", "Cost"), ("Date", "UsageDateTime", "UsageDate"),
               ("MeterCategory", "ConsumedService")), azure_line),
}  # fmt: skip


def _flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"service": {"description": "X"}}`` -> ``{"service.description": "X"}`` (lists kept as they are)."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def parquet_rows(path: Path, name_of: Callable[[str], str], columns: frozenset[str] | None) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file, read a record batch at a time; structs flattened, maps as dicts.

    Only the columns whose (read) name is in ``columns`` are read, or whose structs hold one
    (``service`` for ``service.description``): a CUR 2.0 file has ~120 columns, lines need 9.
    pyarrow is imported here so that no other process pays for its import.

    Raises:
      InvalidInput: the file is no Parquet, or is damaged (``field="path"``).
    """
    import pyarrow
    import pyarrow.parquet

    try:
        parquet = pyarrow.parquet.ParquetFile(path)
        names = {c: name_of(c) for c in parquet.schema_arrow.names}
        wanted = [c for c, n in names.items()
                  if columns is None or n in columns or any(w.startswith(f"{n}.") for w in columns)]  # fmt: skip
        # none wanted: it is some other export, whose first row the reader refuses naming a column it lacks
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, columns=wanted or None):
            keys = [names[c] for c in batch.schema.names]
            nested = any(isinstance(t, pyarrow.StructType | pyarrow.MapType) for t in batch.schema.types)
            values = [column.to_pylist(maps_as_pydicts="lossy") for column in batch.columns]
            for row in zip(*values, strict=True):
                item = dict(zip(keys, row, strict=True))
                yield _flatten(item) if nested else item
    except (pyarrow.ArrowException, OSError) as e:
        raise InvalidInput(f"{path.name} is no readable Parquet file: {e}", field="path") from None


def rows(
    path: Path, *, name_of: Callable[[str], str] = str, columns: frozenset[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of a CSV, JSON (a JSON array, or one object per line) or Parquet file, nested JSON flattened.

    ``name_of`` maps each column's name (legacy CUR names to CUR 2.0 ones ...). PERF: it runs once
    per CSV header and once per distinct JSON key, not once per cell (5x faster on a CUR).
    ``columns``: the (mapped) names wanted, when only these are read (Parquet, see :func:`parquet_rows`).
    """
    if path.name.endswith(".parquet"):
        yield from parquet_rows(path, name_of, columns)
        return
    names: dict[str, str] = {}

    def named(item: dict[str, Any]) -> dict[str, Any]:
        flat = _flatten(item)
        return {names.get(k) or names.setdefault(k, name_of(k)): v for k, v in flat.items()}

    with _open_text(path) as text:
        if path.name.removesuffix(".gz").endswith(".csv"):
            reader = csv.reader(text)
            header = [name_of(c) for c in next(reader, [])]
            for values in reader:
                if values:
                    yield dict(zip(header, values, strict=False))
            return
        first = text.read(1)
        while first.isspace():
            first = text.read(1)
        if first == "[":
            try:
                items = orjson.loads(first + text.read())
            except orjson.JSONDecodeError:
                raise InvalidInput(f"{path.name} is not JSON", field="path") from None
            for item in items:
                if isinstance(item, dict):
                    yield named(item)
            return
        for number, line in enumerate(itertools.chain([first + text.readline()], text), start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise InvalidInput(f"{path.name} line {number} is not JSON", field="path") from None
            if isinstance(item, dict):
                yield named(item)


def files(path: str | Path) -> list[Path]:
    """The export files at ``path`` (a file, or a directory read recursively), in name order; AWS manifests left out.

    Raises:
      InvalidInput: nothing is there (``field="path"``).
    """
    root = Path(path)
    if not root.exists():
        raise InvalidInput(f"no export at {str(root)!r}", field="path")
    found = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    # AWS writes a ``<report>-Manifest.json`` beside (CUR) or above (Data Exports) the report's files: no lines
    return [p for p in found if p.name.endswith(SUFFIXES) and not p.name.endswith("-Manifest.json")]


@dataclass
class ExportReader:
    """Reads one provider's export files into :class:`CostLine`; counts what it could not read."""

    provider: str
    #: ``"<file>: <reason>" -> lines`` not read.
    skipped: Counter[str] = field(default_factory=Counter)
    read: int = 0

    def __post_init__(self) -> None:
        if self.provider not in FORMATS:
            raise InvalidInput(f"provider is one of {', '.join(PROVIDERS)}", field="provider")

    def lines(self, paths: Iterable[Path]) -> Iterator[CostLine]:
        """Raises:
        InvalidInput: a file lacks a column its provider's export always has (``field`` names it).
        """
        name_of, required, line_of = FORMATS[self.provider]
        for path in paths:
            checked = False
            for row in rows(path, name_of=name_of, columns=COLUMNS[self.provider]):
                if not checked:
                    missing = [alts[0] for alts in required if not any(a in row for a in alts)]
                    if missing:
                        raise InvalidInput(f"{path.name} is no {self.provider} export: it has no {missing[0]} column",
                                           field=missing[0])  # fmt: skip
                    checked = True
                try:
                    line = line_of(row)
                except ValueError as e:
                    self.skipped[f"{path.name}: {e}"] += 1
                    continue
                if line is not None:
                    self.read += 1
                    yield line
