"""Load region boundaries (GeoJSON) for the risk map: features are matched to regions by code."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from enterprises import geo


class Command(BaseCommand):
    help = (
        "Load region boundaries for the risk map from a GeoJSON FeatureCollection of Polygon/MultiPolygon "
        "features (WGS-84). Each feature names its region by a code property (code, adcode, region_code "
        "or the feature id); an existing boundary of that region is replaced."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .geojson / .json file")
        parser.add_argument("--code-property", help="the feature property that holds the region code")
        parser.add_argument(
            "--skip-unknown", action="store_true", help="skip features whose code matches no region instead of failing"
        )
        parser.add_argument("--source", help="where the data comes from (kept with each boundary; default: file name)")

    def handle(self, *args, file, code_property, skip_unknown, source, **options):
        try:
            data = geo.read_geojson(file)
            result = geo.boundaries_load(
                data=data,
                source=source or Path(file).name,
                code_property=code_property,
                skip_unknown=skip_unknown,
            )
        except geo.GeoJSONError as exc:
            raise CommandError(f"{file}: {exc}" if not str(exc).startswith(str(file)) else str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"loaded {len(result.loaded)} boundaries: {', '.join(result.loaded)}"))
        if result.unknown:
            self.stdout.write(
                self.style.WARNING(f"skipped {len(result.unknown)} unknown codes: {', '.join(result.unknown)}")
            )
