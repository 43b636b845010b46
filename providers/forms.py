from __future__ import annotations

import re

from django import forms

from providers import registry
from providers.services import MAX_KEY_LENGTH


def _choices() -> list[tuple[str, str]]:
    return [(p.name, p.label) for p in registry.with_personal_keys()]


_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField(choices=_choices, widget=forms.HiddenInput)
    key = forms.CharField(
        max_length=MAX_KEY_LENGTH,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    def clean_key(self) -> str:
        key = str(self.cleaned_data["key"])
        if len(key) < 8 or not _KEY.fullmatch(key):
            raise forms.ValidationError("That does not look like an API key.")
        return key


class ProviderChoiceForm(forms.Form):
    provider = forms.ChoiceField(choices=_choices)
