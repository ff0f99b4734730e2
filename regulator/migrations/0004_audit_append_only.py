"""PostgreSQL: the database itself refuses UPDATE and DELETE on the audit log.

The one exception is the retention prune (``manage.py prune_audit``): inside its transaction it
sets ``regulator.audit_prune = 'on'``, and even then the trigger lets through only rows older
than 180 days, so no application bug or stolen app credential can rewrite history or remove
anything still under the 6-month retention. TRUNCATE is left to privileges (the test runner
flushes tables with it): production should REVOKE TRUNCATE on this table from the app role.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION regulator_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF coalesce(current_setting('regulator.audit_prune', true), '') = 'on'
           AND OLD.created_at < now() - interval '180 days' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'regulator_auditentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS regulator_auditentry_append_only ON regulator_auditentry;
CREATE TRIGGER regulator_auditentry_append_only
    BEFORE UPDATE OR DELETE ON regulator_auditentry
    FOR EACH ROW EXECUTE FUNCTION regulator_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS regulator_auditentry_append_only ON regulator_auditentry;
DROP FUNCTION IF EXISTS regulator_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # no placeholders: the % are PL/pgSQL's


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("regulator", "0003_security")]

    operations = [migrations.RunPython(forwards, backwards)]
