"""Browser forms for configuring a device (its RTU bus budget) and operating it: maintenance mode and a
manual coil write."""

from __future__ import annotations

from django import forms
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from devices.buses import device_bus_budget, over_budget_message
from devices.choices import Protocol, RegisterType
from devices.models import Device


class DeviceForm(forms.ModelForm):
    """A device's configuration. ``Device.clean`` refuses an RTU bus on a serial port another device
    already opens, and one whose block reads do not fit in its poll period (the admin's form does
    the same through the model)."""

    class Meta:
        model = Device
        fields = [
            "enterprise",
            "name",
            "location",
            "protocol",
            "host",
            "port",
            "serial_port",
            "baudrate",
            "parity",
            "stopbits",
            "bytesize",
            "poll_period_ms",
            "timeout_ms",
            "retries",
            "enabled",
            "maintenance",
        ]


class ChannelInlineFormSet(BaseInlineFormSet):
    """The channels of one device edited together: each form alone may fit the bus while all the
    new ones together do not, so the bus budget is checked once more over the whole set."""

    def clean(self):
        super().clean()
        device = self.instance
        if device is None or device.protocol != Protocol.RTU or any(self.errors):
            return
        in_forms = {f.instance.pk for f in self.forms if f.instance.pk}
        channels = [c for c in device.channels.filter(enabled=True) if c.pk not in in_forms] if device.pk else []
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            if form.instance.enabled and form.instance.address is not None:
                channels.append(form.instance)
        budget = device_bus_budget(device, channels)
        if budget is not None and budget.over:
            raise forms.ValidationError(over_budget_message(device, budget))


class MaintenanceForm(forms.Form):
    """Enter or leave maintenance mode; the reason goes into the audit trail."""

    maintenance = forms.TypedChoiceField(
        choices=[("on", _("进入维护")), ("off", _("退出维护"))],
        coerce=lambda v: v == "on",
        widget=forms.HiddenInput,
    )
    reason = forms.CharField(
        label=_("原因"),
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": _("如：传感器标定、更换探头")}),
        error_messages={"required": _("请填写原因")},
    )


class CoilWriteForm(forms.Form):
    """Write 1 or 0 to the coil a writable channel maps to (executed and read back by the poller)."""

    value = forms.TypedChoiceField(
        label=_("写入值"),
        choices=[("1", _("合(1)")), ("0", _("分(0)"))],
        coerce=lambda v: v == "1",
        error_messages={"required": _("请选择写入值"), "invalid_choice": _("写入值只能是 1 或 0")},
    )
    reason = forms.CharField(
        label=_("原因"),
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": _("如：报警联动复位、现场确认后关闭切断阀")}),
        error_messages={"required": _("请填写写入原因")},
    )

    def __init__(self, *args, channel, **kwargs):
        self.channel = channel
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        problem = coil_write_problem(self.channel)
        if problem:
            raise forms.ValidationError(problem)
        return cleaned


def coil_write_problem(channel) -> str:
    """Why a coil write on ``channel`` cannot be carried out now ("" when it can).

    The poller fails commands for devices it does not run (disabled, in maintenance); saying so
    before queueing one spares the operator a command that can only fail.
    """
    device = channel.device
    if channel.register_type != RegisterType.COIL:
        return str(_("只有线圈测点可以写入"))
    if not channel.writable:
        return str(_("该测点未开启“允许联动写入”，请在后台配置后再操作"))
    if device.protocol == Protocol.HTTP:
        return str(_("HTTP 推送设备不能写入线圈"))
    if not device.enabled:
        return str(_("设备已停用，写入不会被执行"))
    if device.maintenance:
        return str(_("设备处于维护模式，写入不会被执行；请先退出维护"))
    return ""
