# A draw writes ~14,000 inspections and ~28,000 team rows in one go, each into every index of its
# table. Two of those indexes serve no query:
# - inspection.leader_id: there is no reverse relation (related_name="+"); only deleting a user
#   looks inspections up by leader (SET NULL), a rare operation that can scan.
# - the team table's index on inspection_id alone: the unique (inspection_id, user_id) index starts
#   with that column and serves the same lookups. Django creates it for an implicit M2M table, so the
#   table is declared as an explicit through model (same table and columns: the state changes, the
#   database does not), and then its inspection foreign key is altered to db_index=False.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("enforcement", "0003_inspection_fewer_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="inspection",
            name="leader",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="组长",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="InspectionTeamMember",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "inspection",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="enforcement.inspection",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "检查组成员",
                        "verbose_name_plural": "检查组成员",
                        "db_table": "enforcement_inspection_team",
                        "unique_together": {("inspection", "user")},
                    },
                ),
                migrations.AlterField(
                    model_name="inspection",
                    name="team",
                    field=models.ManyToManyField(
                        related_name="enforcement_inspections",
                        through="enforcement.InspectionTeamMember",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="检查组",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterField(
            model_name="inspectionteammember",
            name="inspection",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="enforcement.inspection",
            ),
        ),
    ]
