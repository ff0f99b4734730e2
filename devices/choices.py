"""Enumerations of the monitoring devices: protocols, registers, data types, quality and status."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Protocol(models.TextChoices):
    TCP = "tcp", _("Modbus TCP 网关")
    RTU = "rtu", _("Modbus RTU 串口总线")
    HTTP = "http", _("HTTP 数据推送(DCS/MES)")


class Parity(models.TextChoices):
    NONE = "N", _("无校验")
    EVEN = "E", _("偶校验")
    ODD = "O", _("奇校验")


class DeviceStatus(models.TextChoices):
    UNKNOWN = "unknown", _("未知")
    ONLINE = "online", _("在线")
    OFFLINE = "offline", _("离线")
    DEMOTED = "demoted", _("降级探测")
    MAINTENANCE = "maintenance", _("维护中")
    DISABLED = "disabled", _("已停用")


# Statuses in which a device delivers data (the alerts app treats the others as "no data").
LIVE_STATUSES = frozenset({DeviceStatus.ONLINE})


class RegisterType(models.TextChoices):
    HOLDING = "holding", _("保持寄存器")
    INPUT = "input", _("输入寄存器")
    COIL = "coil", _("线圈")
    DISCRETE = "discrete", _("离散输入")


BIT_REGISTERS = frozenset({RegisterType.COIL, RegisterType.DISCRETE})


class DataType(models.TextChoices):
    INT16 = "int16", "int16"
    UINT16 = "uint16", "uint16"
    INT32 = "int32", "int32"
    UINT32 = "uint32", "uint32"
    FLOAT32 = "float32", "float32"
    FLOAT64 = "float64", "float64"
    BOOL = "bool", _("开关量")


# Registers (16-bit words) each data type occupies.
WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4, "bool": 1}


class ByteOrder(models.TextChoices):
    BIG = "big", _("大端(AB)")
    LITTLE = "little", _("小端(BA)")


class WordOrder(models.TextChoices):
    BIG = "big", _("高字在前")
    LITTLE = "little", _("低字在前")


class Quantity(models.TextChoices):
    COMBUSTIBLE_GAS = "combustible_gas", _("可燃气体")
    TOXIC_GAS = "toxic_gas", _("有毒气体")
    PRESSURE = "pressure", _("压力")
    TEMPERATURE = "temperature", _("温度")
    LEVEL = "level", _("液位")
    FLOW = "flow", _("流量")
    STATE = "state", _("开关状态")
    OTHER = "other", _("其他")


class OverRange(models.TextChoices):
    """What a reading above the channel's range means (see ``over_range_is_alarm``)."""

    BY_QUANTITY = "quantity", _("按监测量(默认)")
    ALARM = "alarm", _("超量程按最高级报警")
    FAULT = "fault", _("超量程仅报传感器故障")


# Quantities whose sensor saturates in a leak: a gas detector reading past its top is the gas, not a
# broken sensor, so above the range is the highest alarm (fail-safe high).
FAIL_SAFE_HIGH_QUANTITIES = frozenset({Quantity.COMBUSTIBLE_GAS, Quantity.TOXIC_GAS})


def over_range_is_alarm(quantity: str, over_range: str) -> bool:
    """The one place the rule is resolved: True when a reading above the range raises every high
    limit at once (and the sensor fault), False when it is a sensor fault only."""
    if over_range == OverRange.ALARM:
        return True
    if over_range == OverRange.FAULT:
        return False
    return quantity in FAIL_SAFE_HIGH_QUANTITIES


DEFAULT_UNITS = {
    Quantity.COMBUSTIBLE_GAS: "%LEL",
    Quantity.TOXIC_GAS: "ppm",
    Quantity.PRESSURE: "MPa",
    Quantity.TEMPERATURE: "°C",
    Quantity.LEVEL: "m",
    Quantity.FLOW: "m³/h",
}


class Quality(models.TextChoices):
    GOOD = "good", _("正常")
    TIMEOUT = "timeout", _("超时")
    EXCEPTION = "exception", _("异常应答")
    CRC = "crc", _("校验错误")
    GARBAGE = "garbage", _("报文错误")
    OUT_OF_RANGE = "out_of_range", _("超量程")
    NAN = "nan", _("非数值(NaN/Inf)")
    SENTINEL = "sentinel", _("哨兵值(传感器故障)")
    DISCONNECTED = "disconnected", _("连接中断")
    INVALID = "invalid", _("数据无效")
    CLOCK_SKEW = "clock_skew", _("设备时钟偏差")


class CoilWriteStatus(models.TextChoices):
    PENDING = "pending", _("待执行")
    RUNNING = "running", _("执行中")
    DONE = "done", _("已确认")
    FAILED = "failed", _("失败")


COIL_WRITE_TRANSITIONS = {
    CoilWriteStatus.PENDING: {CoilWriteStatus.RUNNING, CoilWriteStatus.FAILED},
    CoilWriteStatus.RUNNING: {CoilWriteStatus.DONE, CoilWriteStatus.FAILED},
    CoilWriteStatus.DONE: set(),
    CoilWriteStatus.FAILED: set(),
}
