# The draw's snapshot reads every enterprise's latest live inspection and its visits of the last
# year from this index alone (index-only scan in enterprise, date, id order).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("enforcement", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="inspection",
            index=models.Index(
                condition=models.Q(("status", "cancelled"), _negated=True),
                fields=["enterprise", "-date", "-id"],
                name="inspection_live_latest",
            ),
        ),
    ]
