from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.utils import timezone

MAX_ADJUSTMENT = 1_000_000


class AdjustCoinsForm(forms.Form):
    direction = forms.ChoiceField(choices=[("grant", "Grant coins"), ("deduct", "Deduct coins")])
    amount = forms.IntegerField(min_value=1, max_value=MAX_ADJUSTMENT)
    reason = forms.CharField(max_length=200, strip=True)
    # One token per form shown: submitting the same form twice applies it once.
    token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def signed_amount(self) -> int:
        amount = int(self.cleaned_data["amount"])
        return amount if self.cleaned_data["direction"] == "grant" else -amount


class DashboardRangeForm(forms.Form):
    """The dashboard's range (days in the site's time zone, both included) and, optionally,
    one provider or one model. Blank dates: the last 30 days."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    provider = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, providers: list[str], models: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["provider"] = forms.ChoiceField(
            required=False, choices=[("", "Every provider"), *((p, p) for p in providers)]
        )
        self.fields["model"] = forms.ChoiceField(
            required=False, choices=[("", "Every model"), *((m, m) for m in models)]
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        today = timezone.localdate()
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError("The range starts after it ends.")
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"A range of at most {MAX_DAYS} days, please.")
        data["start"], data["end"] = start, end
        return data


DEFAULT_DAYS = 30
MAX_DAYS = 366
