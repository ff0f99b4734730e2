from decimal import Decimal

import pytest

from enterprises.choices import alpha_for_people, grade_for_r
from enterprises.models import EnterpriseChange, MajorHazardInstallation
from enterprises.services import installation_update

from .conftest import add_installation


@pytest.mark.parametrize(
    "r, grade",
    [
        (Decimal("100"), 1),
        (Decimal("99.999"), 2),
        (Decimal("50"), 2),
        (Decimal("49.999"), 3),
        (Decimal("10"), 3),
        (Decimal("9.999"), 4),
        (Decimal("0"), 4),
        (Decimal("250"), 1),
    ],
)
def test_grade_boundaries(r, grade):
    assert grade_for_r(r) == grade


@pytest.mark.parametrize(
    "people, alpha",
    [
        (0, "0.5"),
        (1, "1.0"),
        (29, "1.0"),
        (30, "1.2"),
        (49, "1.2"),
        (50, "1.5"),
        (99, "1.5"),
        (100, "2.0"),
        (5000, "2.0"),
    ],
)
def test_alpha_table_gb18218(people, alpha):
    assert alpha_for_people(people) == Decimal(alpha)


def _chlorine(q):
    # chlorine: beta 4 (table 2), critical quantity 5 t
    return [{"name": "氯", "substance_class": "specific", "actual_quantity": Decimal(q), "critical_quantity": 5}]


@pytest.mark.parametrize(
    "q, people, r, grade",
    [
        ("125", 10, "100.000", 1),  # alpha 1 * 4 * 125/5 = 100 exactly -> 一级
        ("124.99", 10, "99.992", 2),  # just below 100 -> 二级
        ("62.5", 10, "50.000", 2),  # 50 exactly -> 二级
        ("62.49", 10, "49.992", 3),
        ("12.5", 10, "10.000", 3),  # 10 exactly -> 三级
        ("12.49", 10, "9.992", 4),
        ("25", 0, "10.000", 3),  # nobody within 500 m: alpha 0.5
        ("10", 120, "16.000", 3),  # more than 100 people: alpha 2
    ],
)
def test_service_computes_r_and_grade(world, q, people, r, grade):
    inst = add_installation(world.here, world.inspector, people=people, substances=_chlorine(q))
    inst.refresh_from_db()
    assert inst.r_value == Decimal(r)
    assert inst.grade == grade


def test_several_substances_sum_with_their_own_beta(world):
    substances = [
        {"name": "氯", "substance_class": "specific", "actual_quantity": "5", "critical_quantity": "5"},  # 4*1
        {"name": "甲醇", "substance_class": "W5.3", "actual_quantity": "250", "critical_quantity": "500"},  # 1*0.5
        {"name": "液化石油气", "substance_class": "W2", "actual_quantity": "100", "critical_quantity": "50"},  # 1.5*2
    ]
    inst = add_installation(world.here, world.inspector, people=60, substances=substances)  # alpha 1.5
    assert inst.r_value == Decimal("11.250")  # 1.5 * (4 + 0.5 + 3)
    assert inst.grade == 3
    assert [s.beta for s in inst.substances.order_by("id")] == [Decimal("4"), Decimal("1"), Decimal("1.5")]


def test_r_is_recomputed_when_people_or_substances_change(world):
    inst = add_installation(world.here, world.inspector, people=10, substances=_chlorine("12.5"))
    assert inst.grade == 3
    inst = installation_update(installation=inst, user=world.inspector, data={"people_within_500m": 150})
    assert (inst.r_value, inst.grade) == (Decimal("20.000"), 3)
    inst = installation_update(installation=inst, user=world.inspector, data={}, substances=_chlorine("70"))
    assert (inst.r_value, inst.grade) == (Decimal("112.000"), 1)
    assert MajorHazardInstallation.objects.get(pk=inst.pk).grade == 1
    change = EnterpriseChange.objects.filter(enterprise=world.here, action="hazard_updated").first()
    assert "一级" in change.summary


def test_unknown_toxic_gas_without_beta_is_rejected(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        add_installation(
            world.here,
            world.inspector,
            substances=[
                {"name": "未知气体", "substance_class": "specific", "actual_quantity": 1, "critical_quantity": 1}
            ],
        )
    assert "β" in str(exc.value)
    assert not MajorHazardInstallation.objects.filter(enterprise=world.here).exists()
