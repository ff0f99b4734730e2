"""A BRIN index on Reading.time (PostgreSQL only): tiny, and enough for pruning by age.

Per-channel range queries use the (channel, time) unique btree; BRIN works because rows arrive in
time order. SQLite has no BRIN, so the operation does nothing there.
"""

from django.db import migrations


def create_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS devices_reading_time_brin ON devices_reading USING brin (time)"
        )


def drop_brin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS devices_reading_time_brin")


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial")]

    operations = [migrations.RunPython(create_brin, drop_brin, elidable=False)]
