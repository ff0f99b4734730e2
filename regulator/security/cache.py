"""Django's DatabaseCache with an atomic ``incr``, for the throttle counters without Redis.

Django's ``BaseCache.incr`` (which DatabaseCache inherits) is a get followed by a set: two web
processes counting the same login attempt window read the same value and one attempt is lost,
so a parallel burst gets through a throttle. Here the row is locked first (an UPDATE takes the
row lock on PostgreSQL and the write lock on SQLite, waiting for the other writer), then read and
rewritten in the same transaction, keeping its expiry. Redis's RedisCache already uses INCR.
"""

from __future__ import annotations

import base64
import pickle

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction


class AtomicDatabaseCache(DatabaseCache):
    def incr(self, key, delta=1, version=None):
        db_key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote_name = connection.ops.quote_name
        table = quote_name(self._table)
        with transaction.atomic(using=db):
            with connection.cursor() as cursor:
                expires, cache_key = quote_name("expires"), quote_name("cache_key")
                lock_row = f"UPDATE {table} SET {expires} = {expires} WHERE {cache_key} = %s"  # noqa: S608
                cursor.execute(lock_row, [db_key])
                if cursor.rowcount == 0:
                    raise ValueError(f"Key '{key}' not found")
            value = self.get(key, version=version)  # honours the expiry (an expired row reads as missing)
            if value is None:
                raise ValueError(f"Key '{key}' not found")
            new_value = value + delta
            encoded = base64.b64encode(pickle.dumps(new_value, self.pickle_protocol)).decode("latin1")
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET {quote_name('value')} = %s WHERE {quote_name('cache_key')} = %s",  # noqa: S608
                    [encoded, db_key],
                )
        return new_value

    def decr(self, key, delta=1, version=None):
        return self.incr(key, -delta, version=version)
