# A jurisdiction's overdue hazards, found enterprise by enterprise from an index of open deadlines.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hazards", "0005_open_due_index_without_include"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="hazard",
            index=models.Index(
                condition=models.Q(("status__in", ["reported", "confirmed", "rectifying"])),
                fields=["enterprise", "due_date"],
                name="hazard_open_enterprise_due",
            ),
        ),
    ]
