# A drawn inspection's plan and draw were two foreign keys, each checked for every one of the
# ~14,000 inspections a draw writes. Plan and draw go together (inspections are planned only by a
# draw; others have neither), so one composite foreign key checks both, and more than before: the
# draw must be of the inspection's plan. Django has no composite foreign keys: the two fields lose
# their own constraints (db_constraint=False; their indexes stay) and the constraint is added in
# SQL, on PostgreSQL. MATCH FULL: both columns set, or neither.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


KEY = "inspection_draw_of_plan"


def add_draw_of_plan_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE enforcement_inspection ADD CONSTRAINT {KEY} FOREIGN KEY (draw_id, plan_id) "
        "REFERENCES enforcement_draw (id, plan_id) MATCH FULL DEFERRABLE INITIALLY DEFERRED"
    )


def drop_draw_of_plan_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE enforcement_inspection DROP CONSTRAINT {KEY}")


class Migration(migrations.Migration):
    dependencies = [
        ("enforcement", "0004_inspection_team_fewer_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="draw",
            constraint=models.UniqueConstraint(fields=("id", "plan"), name="draw_id_plan"),
        ),
        migrations.AlterField(
            model_name="inspection",
            name="draw",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="inspections",
                to="enforcement.draw",
                verbose_name="抽取记录",
            ),
        ),
        migrations.AlterField(
            model_name="inspection",
            name="plan",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="inspections",
                to="enforcement.inspectionplan",
                verbose_name="检查计划",
            ),
        ),
        migrations.RunPython(add_draw_of_plan_key, drop_draw_of_plan_key, elidable=False),
    ]
