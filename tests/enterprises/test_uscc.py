import pytest
from django.core.exceptions import ValidationError

from enterprises import uscc

# 91350100M000100Y43 is the worked example of GB 32100-2015; the others are built with the check rule.
VALID = [
    "91350100M000100Y43",  # 市场监管 (9) 企业 (1), letters in the organisation code
    "911100001000080343",  # 市场监管, digits only
    uscc.make("11320581MB0000001"),  # 机构编制 (1) 机关 (1)
    uscc.make("51100000500000001"),  # 民政 (5) 社会团体 (1)
    uscc.make("52320581MJ0000001"),  # 民政 (5) 民办非企业单位 (2)
    uscc.make("A1110000MB0000001"),  # 中央军委改革和编制办公室 (A)
    uscc.make("N2320581MF0000001"),  # 农业 (N) 村级集体经济组织 (2)
    uscc.make("Y1320581MA0000001"),  # 其他 (Y)
    uscc.make("92320581MA1XXXXX0"),  # 个体工商户 (9 2) with X in the code
]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_with_digit_and_letter_authorities(code):
    assert uscc.validate(code) == code


@pytest.mark.parametrize(
    "raw",
    [
        " 91350100m000100y43 ",  # lower case, spaces around
        "9135 0100 M000 100Y 43",  # grouped with spaces
        "９１３５０１００Ｍ０００１００Ｙ４３",  # full-width digits and letters
        "91350100-M000100Y4-3",  # separators
        "91350100M000100Y43\u3000",  # ideographic space
    ],
)
def test_normalises_case_spaces_and_full_width(raw):
    assert uscc.validate(raw) == "91350100M000100Y43"


def _error(raw):
    with pytest.raises(ValidationError) as exc:
        uscc.validate(raw)
    return exc.value


def test_wrong_length_names_the_length():
    err = _error("91350100M000100Y4")
    assert err.code == "uscc_length"
    assert "18位" in err.messages[0] and "17位" in err.messages[0]


@pytest.mark.parametrize("bad", ["I", "O", "Z", "S", "V"])
def test_forbidden_letters_are_named(bad):
    err = _error("91350100M000100" + bad + "43")
    assert err.code == "uscc_charset"
    assert bad in err.messages[0]


def test_unknown_registration_authority():
    err = _error(uscc.make("B1320581MA0000001"))
    assert err.code == "uscc_authority"
    assert "B" in err.messages[0]


def test_organisation_type_not_allowed_for_authority():
    err = _error(uscc.make("94320581MA0000001"))  # 市场监管 has types 1/2/3 only
    assert err.code == "uscc_org_type"
    assert "4" in err.messages[0] and "9" in err.messages[0]


def test_region_part_must_be_digits():
    err = _error(uscc.make("91A20581MA0000001"))
    assert err.code == "uscc_region"


def test_wrong_check_character_says_what_it_should_be():
    err = _error("91350100M000100Y44")
    assert err.code == "uscc_check"
    assert "“3”" in err.messages[0]  # expected
    assert "“4”" in err.messages[0]  # actual


def test_check_character_formula_matches_the_standard():
    # (31 - sum(value_i * 3^(i-1)) mod 31) mod 31 over the first 17 characters
    first17 = "91350100M000100Y4"
    total = sum(uscc.VALUES[ch] * 3**i for i, ch in enumerate(first17))
    assert uscc.check_character(first17) == uscc.ALPHABET[(31 - total % 31) % 31] == "3"


def test_check_value_zero_maps_to_character_0():
    # find a code whose check value is 0 to cover the outer "mod 31"
    for n in range(2000):
        first17 = f"91320581MA{n:07d}"
        if uscc.check_character(first17) == "0":
            assert uscc.validate(first17 + "0")
            return
    pytest.fail("no code with check value 0 found")
