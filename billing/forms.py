from __future__ import annotations

import uuid

from django import forms

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
