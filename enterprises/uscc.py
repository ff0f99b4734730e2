"""Unified social credit code (统一社会信用代码), GB 32100-2015.

Layout: 1 registration authority + 1 organisation type + 6 region code + 9 organisation code
(itself with a mod-11 check) + 1 check character (mod 31 over the first 17).
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 3^(i-1) mod 31 for positions 1..17

# Registration authorities (first character) and the organisation types each may use (second).
AUTHORITY_TYPES: dict[str, str] = {
    "1": "1239",  # 机构编制
    "2": "19",  # 外交
    "3": "123459",  # 司法行政 (law firms etc.)
    "4": "19",  # 文化
    "5": "1239",  # 民政
    "6": "129",  # 旅游
    "7": "129",  # 宗教
    "8": "19",  # 工会
    "9": "123",  # 工商 / 市场监管
    "A": "19",  # 中央军委改革和编制办公室
    "N": "1239",  # 农业 (农村集体经济组织)
    "Y": "1",  # 其他
}


def normalize(raw: str) -> str:
    """Upper-case, full-width to half-width (NFKC), drop spaces and common separators."""
    text = unicodedata.normalize("NFKC", raw or "")
    return "".join(ch for ch in text.upper() if not ch.isspace() and ch not in "-_")


def check_character(first17: str) -> str:
    total = sum(VALUES[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate(raw: str) -> str:
    """Return the normalised code or raise ValidationError naming the rule that failed."""
    code = normalize(raw)
    if len(code) != 18:
        raise ValidationError(_("统一社会信用代码应为18位，当前为%(n)d位") % {"n": len(code)}, code="uscc_length")
    bad = [ch for ch in code if ch not in VALUES]
    if bad:
        raise ValidationError(
            _("统一社会信用代码含有不允许的字符：%(chars)s（不使用 I、O、Z、S、V）")
            % {"chars": "、".join(sorted(set(bad)))},
            code="uscc_charset",
        )
    authority, org_type = code[0], code[1]
    if authority not in AUTHORITY_TYPES:
        raise ValidationError(_("第1位登记管理部门代码“%(c)s”无效") % {"c": authority}, code="uscc_authority")
    if org_type not in AUTHORITY_TYPES[authority]:
        raise ValidationError(
            _("第2位机构类别代码“%(t)s”不属于登记管理部门“%(a)s”") % {"t": org_type, "a": authority},
            code="uscc_org_type",
        )
    if not code[2:8].isdigit():
        raise ValidationError(_("第3-8位登记管理机关行政区划码应为6位数字"), code="uscc_region")
    expected = check_character(code[:17])
    if code[17] != expected:
        raise ValidationError(
            _("统一社会信用代码校验位错误：第18位应为“%(expected)s”，实际为“%(actual)s”")
            % {"expected": expected, "actual": code[17]},
            code="uscc_check",
        )
    return code


def make(first17: str) -> str:
    """Append the check character (used by the demo generator and tests)."""
    return first17 + check_character(first17)
