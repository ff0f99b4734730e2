# A draw writes ~14,000 inspections in one statement, each into every index of the table: two of
# them were never read. enterprise_id alone is the first column of (enterprise, -date) and of
# inspection_live_latest, which serve every lookup by enterprise (PROTECT checks included); the
# varchar_pattern_ops (LIKE) index db_index adds for status on PostgreSQL serves no query. The plain
# status index stays, under a name of its own.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("enforcement", "0002_inspection_live_latest_index"),
        ("enterprises", "0009_indicator_day_snapshot"),
    ]

    operations = [
        migrations.AlterField(
            model_name="inspection",
            name="enterprise",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="inspections",
                to="enterprises.enterprise",
                verbose_name="企业",
            ),
        ),
        migrations.AlterField(
            model_name="inspection",
            name="status",
            field=models.CharField(
                choices=[("planned", "待检查"), ("completed", "已完成"), ("cancelled", "已取消")],
                default="planned",
                max_length=16,
                verbose_name="状态",
            ),
        ),
        migrations.AddIndex(
            model_name="inspection",
            index=models.Index(fields=["status"], name="inspection_status"),
        ),
    ]
