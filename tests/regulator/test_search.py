from django.db.models import Q

from regulator.search import text_q


def test_text_without_case_is_a_plain_like_and_text_with_letters_ignores_case():
    assert text_q("化工", "name") == Q(name__contains="化工")
    assert text_q("9132", "name", "code") == Q(name__contains="9132") | Q(code__contains="9132")
    assert text_q("ABC化工", "name", "enterprise__name") == Q(name__icontains="ABC化工") | Q(
        enterprise__name__icontains="ABC化工"
    )
