"""Fast inserts for the big writes (a draw's inspections, the nightly credit scores).

PostgreSQL gets COPY (MEASURED.md: ~425,000 rows/s against ~50,000 for bulk_create); other
databases fall back to ``bulk_create``. Ids for COPY are taken from the table's own sequence
first, so callers get primary keys back just as with ``bulk_create``.
"""

from __future__ import annotations

import json

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import JSONField


def _copy(model, columns: list[str], rows) -> None:
    quote = connection.ops.quote_name
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _allocate_ids(model, count: int) -> list[int]:
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, column, count]
        )
        return [row[0] for row in cursor.fetchall()]


def bulk_insert(model, objs: list, batch_size: int = 5000) -> list:
    """Insert model instances and set their primary keys (defaults and auto_now_add applied)."""
    if not objs:
        return objs
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size)
        return objs
    for obj, pk in zip(objs, _allocate_ids(model, len(objs)), strict=True):
        obj.pk = pk
    fields = model._meta.concrete_fields
    real = connections[DEFAULT_DB_ALIAS]  # not the proxy: its attribute lookups cost ~1 us each, per value
    _copy(
        model,
        [f.column for f in fields],
        (tuple(f.get_db_prep_save(f.pre_save(obj, True), real) for f in fields) for obj in objs),
    )
    return objs


_PER_ROW = object()


def _shared_default(field, real, now):
    """The prepared value every new row gets for ``field`` when none is given (auto_now and
    auto_now_add: ``now``), or ``_PER_ROW`` when its default is a callable evaluated per row."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return field.get_db_prep_save(now, real)
    if field.has_default() and callable(field.default) and field.default not in (dict, list):
        return _PER_ROW
    return field.get_db_prep_save(field.get_default(), real)


def insert_new(model, values: list[dict]) -> list[int]:
    """Insert rows given as {attname: value}; other fields take their defaults (auto_now_add: now).

    Returns the new primary keys in order. Cheaper than model instances for thousands of rows.
    """
    if not values:
        return []
    if connection.vendor != "postgresql":
        ids = [obj.pk for obj in bulk_insert(model, [model(**v) for v in values])]
        if None in ids:  # SQLite before 3.35 cannot return ids from a bulk insert
            raise RuntimeError("the database did not return the new ids (SQLite 3.35 or later is needed)")
        return ids
    from django.utils import timezone

    ids = _allocate_ids(model, len(values))
    real = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    fields = model._meta.concrete_fields

    # Values that are the same for every row (constant defaults, auto_now) are prepared once.
    constant: dict[str, object] = {}
    for field in fields:
        if not field.primary_key and (value := _shared_default(field, real, now)) is not _PER_ROW:
            constant[field.attname] = value

    def row_of(given: dict, pk) -> tuple:
        out = []
        for field in fields:
            name = field.attname
            if field.primary_key:
                out.append(pk)
            elif name in given:
                out.append(field.get_db_prep_save(given[name], real))
            elif name in constant:
                out.append(constant[name])
            else:
                out.append(field.get_db_prep_save(field.get_default(), real))
        return tuple(out)

    _copy(model, [f.column for f in fields], (row_of(given, pk) for given, pk in zip(values, ids, strict=True)))
    return ids


def insert_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """Insert plain tuples of the named fields (no model instances: the cheapest path)."""
    if not rows:
        return
    meta = model._meta
    if connection.vendor != "postgresql":
        # executemany of prepared values: no model instances, no per-batch SQL compilation.
        real = connections[DEFAULT_DB_ALIAS]
        prepared = [meta.get_field(name) for name in fields]
        quote = real.ops.quote_name
        columns = ", ".join(quote(f.column) for f in prepared)  # identifiers from the model, quoted
        placeholders = ", ".join(["%s"] * len(prepared))
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
        with real.cursor() as cursor:
            cursor.executemany(
                sql,
                [tuple(f.get_db_prep_save(v, real) for f, v in zip(prepared, row, strict=True)) for row in rows],
            )
        return
    json_at = [i for i, name in enumerate(fields) if isinstance(meta.get_field(name), JSONField)]

    def encoded():
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = json.dumps(row[i], ensure_ascii=False)
            yield row

    _copy(model, [meta.get_field(name).column for name in fields], encoded())


def insert_select_columns(model, given: dict[str, str]) -> tuple[list[str], list[str], dict]:
    """Columns and SELECT expressions of ``INSERT INTO <model's table> (...) SELECT ...`` (PostgreSQL).

    ``given`` maps attnames to SQL expressions; every other field (but the primary key) takes its
    default as a typed parameter (auto_now/auto_now_add: now, prepared once), a random UUID field
    gen_random_uuid(). Returns (quoted columns, expressions, parameters by name for the defaults).
    """
    import uuid

    from django.db.models import UUIDField
    from django.utils import timezone

    real = connections[DEFAULT_DB_ALIAS]
    quote = real.ops.quote_name
    now = timezone.now()
    columns, expressions, params = [], [], {}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.attname in given:
            expressions.append(given[field.attname])
            continue
        value = _shared_default(field, real, now)
        if value is _PER_ROW:
            if isinstance(field, UUIDField) and field.default is uuid.uuid4:
                expressions.append("gen_random_uuid()")
                continue
            raise ValueError(f"{model.__name__}.{field.name}: a callable default has no SQL equivalent here")
        name = f"default_{field.attname}"
        params[name] = value
        expressions.append(f"%({name})s::{field.cast_db_type(real)}")
    return columns, expressions, params
