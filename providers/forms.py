from __future__ import annotations

import re

from django import forms

from providers import registry
from providers.services import MAX_KEY_LENGTH


def _choices() -> list[tuple[str, str]]:
    return [(p.name, p.label) for p in registry.with_personal_keys()]


# Printable ASCII with no spaces and no quotes (no provider's key has them).
_KEY = re.compile(r"[\x21-\x7e]+")
_QUOTES = "\"'`"


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField(choices=_choices, widget=forms.HiddenInput)
    key = forms.CharField(
        max_length=MAX_KEY_LENGTH,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    def clean_key(self) -> str:
        key = str(self.cleaned_data["key"])
        # Pasted with the quotes around it (from a .env file or a shell line): without them.
        if len(key) >= 2 and key[0] == key[-1] and key[0] in _QUOTES:
            key = key[1:-1].strip()
        if len(key) < 8 or not _KEY.fullmatch(key) or any(q in key for q in _QUOTES):
            raise forms.ValidationError("That does not look like an API key.")
        return key


class ProviderChoiceForm(forms.Form):
    provider = forms.ChoiceField(choices=_choices)
