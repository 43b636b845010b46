"""The catalogue agrees with what the installed provider SDKs announce."""

from __future__ import annotations

import datetime as dt
import re

from anthropic._data import DEPRECATED_MODELS

from providers.catalogue import CATALOGUE, find_model


def _sdk_date(text: str) -> dt.date:
    """The SDK's 'January 22nd, 2027' as a date."""
    return dt.datetime.strptime(re.sub(r"(\d+)(st|nd|rd|th)", r"\1", text), "%B %d, %Y").date()


def test_every_end_of_life_the_sdk_announces_for_a_catalogue_model_is_in_the_catalogue() -> None:
    announced = {model_id: _sdk_date(day) for model_id, day in DEPRECATED_MODELS.items()}
    listed = {
        model_id: model.retires_on
        for model_id in announced
        if (model := find_model(model_id)) is not None
    }
    assert listed == {model_id: announced[model_id] for model_id in listed}


def test_every_model_with_an_end_of_life_names_a_successor_in_the_catalogue() -> None:
    for model in CATALOGUE:
        if model.retires_on is not None:
            successor = find_model(model.successor or "")
            assert successor is not None, model.id
            assert successor.retires_on is None, model.id
