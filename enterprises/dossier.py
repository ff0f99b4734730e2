"""The dossier ("一企一档") is assembled from sections that apps register at start-up.

An app adds its section in ``AppConfig.ready()``::

    from enterprises.dossier import DossierSection, register
    register(DossierSection(key="hazards", title=_("隐患"), order=30,
                            template="hazards/dossier_section.html", build=hazard_summary))

``build(enterprise, user) -> dict`` returns JSON-serialisable data; the HTML page renders it with
``template`` (context: ``section``, ``data``, ``enterprise``) and the API returns it under
``sections[key]``. The registry lives here so the registry app never imports the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_SECTIONS: dict[str, DossierSection] = {}


@dataclass(frozen=True)
class DossierSection:
    key: str
    title: str
    order: int
    template: str
    build: Callable[..., dict]


def register(section: DossierSection) -> None:
    _SECTIONS[section.key] = section


def sections() -> list[DossierSection]:
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.key))


def build_all(enterprise, user) -> list[tuple[DossierSection, dict]]:
    """Every registered section with its data; a section that fails is shown as unavailable."""
    import logging

    result = []
    for section in sections():
        try:
            data = section.build(enterprise, user)
        except Exception:  # one broken section must not take the whole dossier down
            logging.getLogger(__name__).exception("dossier section %s failed for %s", section.key, enterprise.pk)
            data = {"error": "unavailable"}
        result.append((section, data))
    return result
