"""Alert kinds, levels (红橙黄蓝), the ISA-18.2 lifecycle states and its transition map, tiers, responses."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AlertKind(models.TextChoices):
    HIGH_HIGH = "high_high", _("高高报")
    HIGH = "high", _("高报")
    LOW = "low", _("低报")
    LOW_LOW = "low_low", _("低低报")
    RATE = "rate", _("变化率超限")
    STALE = "stale", _("数据中断")
    SENSOR_FAULT = "sensor_fault", _("传感器故障")
    DEVICE_OFFLINE = "device_offline", _("设备离线")
    # The acquisition itself: a poller's reading spool or alert outbox filled up while the database
    # was away (readings or alert changes may be missing); raised once the database is back.
    ACQUISITION = "acquisition", _("采集缓存溢出")


# Kinds that belong to a device rather than one channel.
DEVICE_KINDS = frozenset({AlertKind.DEVICE_OFFLINE, AlertKind.ACQUISITION})


class AlertLevel(models.IntegerChoices):
    LEVEL_1 = 1, _("一级(爆炸前兆)")
    LEVEL_2 = 2, _("二级(超限)")
    LEVEL_3 = 3, _("三级(设备异常)")
    LEVEL_4 = 4, _("四级(提示)")


LEVEL_COLOURS = {1: "red", 2: "orange", 3: "yellow", 4: "blue"}
LEVEL_COLOUR_NAMES = {1: _("红"), 2: _("橙"), 3: _("黄"), 4: _("蓝")}


class AlertState(models.TextChoices):
    ACTIVE_UNACK = "active_unack", _("报警未确认")
    ACTIVE_ACK = "active_ack", _("报警已确认")
    CLEARED_UNACK = "cleared_unack", _("已恢复未确认")
    NORMAL = "normal", _("已恢复")
    SHELVED = "shelved", _("已搁置")
    SUPPRESSED = "suppressed", _("设计屏蔽(维护中)")
    OUT_OF_SERVICE = "out_of_service", _("停用")


# States in which an alert is still "open": it holds the (channel, kind) slot, and a new occurrence
# updates it instead of creating a second row. NORMAL closes it.
OPEN_STATES = frozenset(
    {
        AlertState.ACTIVE_UNACK,
        AlertState.ACTIVE_ACK,
        AlertState.CLEARED_UNACK,
        AlertState.SHELVED,
        AlertState.SUPPRESSED,
        AlertState.OUT_OF_SERVICE,
    }
)
# States that annunciate (sound, banner) and escalate.
ANNUNCIATED_STATES = frozenset({AlertState.ACTIVE_UNACK, AlertState.ACTIVE_ACK, AlertState.CLEARED_UNACK})
UNACKED_STATES = frozenset({AlertState.ACTIVE_UNACK, AlertState.CLEARED_UNACK})
# States that leave the annunciated part of the lifecycle; leaving them goes back to what the
# process condition says (active -> ACTIVE_UNACK, otherwise NORMAL).
MASKED_STATES = frozenset({AlertState.SHELVED, AlertState.SUPPRESSED, AlertState.OUT_OF_SERVICE})


class AlertAction(models.TextChoices):
    RAISE = "raise", _("触发")
    RETURN = "return", _("恢复正常")  # process condition went away (by the engine)
    REALARM = "realarm", _("再次报警")  # condition came back before acknowledgement ended the alert
    ACKNOWLEDGE = "acknowledge", _("确认")
    SHELVE = "shelve", _("搁置")
    UNSHELVE = "unshelve", _("取消搁置")
    SUPPRESS = "suppress", _("设计屏蔽")
    UNSUPPRESS = "unsuppress", _("解除屏蔽")
    REMOVE_FROM_SERVICE = "remove_from_service", _("停用")
    RETURN_TO_SERVICE = "return_to_service", _("恢复启用")


# action -> {from state: to state}. Masked-state exits resolve to ACTIVE_UNACK or NORMAL at run time
# (marked with the RESOLVE sentinel) because that depends on the live process condition.
RESOLVE = "resolve"
TRANSITIONS: dict[str, dict[str, str]] = {
    AlertAction.RETURN: {
        AlertState.ACTIVE_UNACK: AlertState.CLEARED_UNACK,
        AlertState.ACTIVE_ACK: AlertState.NORMAL,
    },
    AlertAction.REALARM: {
        AlertState.CLEARED_UNACK: AlertState.ACTIVE_UNACK,
    },
    AlertAction.ACKNOWLEDGE: {
        AlertState.ACTIVE_UNACK: AlertState.ACTIVE_ACK,
        AlertState.CLEARED_UNACK: AlertState.NORMAL,
    },
    AlertAction.SHELVE: {
        AlertState.ACTIVE_UNACK: AlertState.SHELVED,
        AlertState.ACTIVE_ACK: AlertState.SHELVED,
        AlertState.CLEARED_UNACK: AlertState.SHELVED,
    },
    AlertAction.UNSHELVE: {AlertState.SHELVED: RESOLVE},
    AlertAction.SUPPRESS: {
        AlertState.ACTIVE_UNACK: AlertState.SUPPRESSED,
        AlertState.ACTIVE_ACK: AlertState.SUPPRESSED,
        AlertState.CLEARED_UNACK: AlertState.SUPPRESSED,
    },
    AlertAction.UNSUPPRESS: {AlertState.SUPPRESSED: RESOLVE},
    AlertAction.REMOVE_FROM_SERVICE: {
        AlertState.ACTIVE_UNACK: AlertState.OUT_OF_SERVICE,
        AlertState.ACTIVE_ACK: AlertState.OUT_OF_SERVICE,
        AlertState.CLEARED_UNACK: AlertState.OUT_OF_SERVICE,
        AlertState.SHELVED: AlertState.OUT_OF_SERVICE,
        AlertState.SUPPRESSED: AlertState.OUT_OF_SERVICE,
    },
    AlertAction.RETURN_TO_SERVICE: {AlertState.OUT_OF_SERVICE: RESOLVE},
}

# Actions a person may take from the UI/API (the others are the engine's).
USER_ACTIONS = (
    AlertAction.ACKNOWLEDGE,
    AlertAction.SHELVE,
    AlertAction.UNSHELVE,
    AlertAction.REMOVE_FROM_SERVICE,
    AlertAction.RETURN_TO_SERVICE,
)


def allowed_actions(state: str, actions=USER_ACTIONS) -> list[str]:
    return [str(a) for a in actions if state in TRANSITIONS.get(a, {})]


class Tier(models.IntegerChoices):
    ENTERPRISE = 0, _("企业")
    PARK = 1, _("园区")
    COUNTY = 2, _("县(区)应急管理局")
    CITY = 3, _("市应急管理局")


class ResponseKind(models.TextChoices):
    PLAN_STARTED = "plan_started", _("启动应急预案")
    VALVE_CLOSED = "valve_closed", _("切断阀已关闭")
    BEACON_ON = "beacon_on", _("现场声光报警已启动")
    EVACUATED = "evacuated", _("人员已疏散")
    FIRE_BRIGADE = "fire_brigade", _("已通知消防救援")
    COUNTY_REPORTED = "county_reported", _("已直报县(区)指挥中心")
    RECTIFICATION_PLAN = "rectification_plan", _("已制定整改方案")
    ON_SITE = "on_site", _("人员已到场")
    OTHER = "other", _("其他处置")


# The response each level must record before its deadline (None: acknowledgement is enough).
REQUIRED_RESPONSE = {
    1: ResponseKind.PLAN_STARTED,
    2: ResponseKind.PLAN_STARTED,
    3: ResponseKind.RECTIFICATION_PLAN,
    4: None,
}


class LinkageStatus(models.TextChoices):
    NONE = "", _("无")
    REQUESTED = "requested", _("已下发")
    CONFIRMED = "confirmed", _("已确认")
    FAILED = "failed", _("失败")
    UNAVAILABLE = "unavailable", _("不可用")
