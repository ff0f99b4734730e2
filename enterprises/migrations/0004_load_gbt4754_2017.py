"""Load GB/T 4754-2017: sections, divisions, and the groups/classes of the high-risk sectors."""

from django.db import migrations


def load(apps, schema_editor):
    from enterprises.data.gbt4754_2017 import rows

    Industry = apps.get_model("enterprises", "Industry")
    by_code = {}
    for code, name, level, parent_code, section, sector in rows():
        obj, _ = Industry.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "level": level,
                "parent": by_code.get(parent_code),
                "section": section,
                "high_risk_sector": sector,
            },
        )
        by_code[code] = obj


def unload(apps, schema_editor):
    # Industries referenced by enterprises stay (PROTECT); the data is reference data anyway.
    pass


class Migration(migrations.Migration):
    dependencies = [("enterprises", "0003_industry_section_former_names_text")]

    operations = [migrations.RunPython(load, unload)]
