"""The audit chain is keyed (HMAC-SM3): each entry records the key id; existing entries keep
their plain SM3 hashes as the chain's legacy prefix (empty key id)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("regulator", "0004_audit_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="chain_key_id",
            field=models.CharField(blank=True, default="", editable=False, max_length=32),
        ),
    ]
