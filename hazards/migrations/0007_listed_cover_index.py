# Listed supervision: the list filters (grade) and the scope join key (enterprise) in the index, so
# the capped count of a listed-hazard list is an index-only scan.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hazards", "0006_open_enterprise_due_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="hazard",
            index=models.Index(
                condition=models.Q(("listed", True)),
                fields=["-reported_at", "-id", "grade", "enterprise"],
                name="hazard_listed_cover",
            ),
        ),
        migrations.RemoveIndex(
            model_name="hazard",
            name="hazard_listed_reported",
        ),
    ]
