"""The catalogue agrees with what the installed provider SDKs announce."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import warnings

import anthropic

from providers.catalogue import CATALOGUE, find_model

# Nothing listens here: the SDK warns before it sends, then fails to connect.
_NOWHERE = "http://127.0.0.1:9"


def _sdk_end_of_life(model_id: str) -> dt.date | None:
    """The end of life the installed SDK announces for `model_id` in its public warning
    ("The model '...' is deprecated and will reach end-of-life on January 22nd, 2027.")."""
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=_NOWHERE, max_retries=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.suppress(anthropic.APIError):
            client.messages.create(
                model=model_id, max_tokens=1, messages=[{"role": "user", "content": "x"}]
            )
    client.close()
    for warning in caught:
        found = re.search(r"end-of-life on (.+?)\.", str(warning.message))
        if issubclass(warning.category, DeprecationWarning) and found:
            day = re.sub(r"(\d+)(st|nd|rd|th)", r"\1", found.group(1))
            return dt.datetime.strptime(day, "%B %d, %Y").date()
    return None


def test_every_end_of_life_the_sdk_announces_for_a_catalogue_model_is_in_the_catalogue() -> None:
    claude = [model for model in CATALOGUE if model.provider == "anthropic"]
    announced = {model.id: day for model in claude if (day := _sdk_end_of_life(model.id))}
    assert announced, "the SDK announces no end of life for any catalogue model"
    assert {m.id: m.retires_on for m in claude if m.id in announced} == announced


def test_every_model_with_an_end_of_life_names_a_successor_in_the_catalogue() -> None:
    for model in CATALOGUE:
        if model.retires_on is not None:
            successor = find_model(model.successor or "")
            assert successor is not None, model.id
            assert successor.retires_on is None, model.id


def test_every_catalogue_model_belongs_to_a_registered_provider() -> None:
    from providers import registry

    assert {model.provider for model in CATALOGUE} <= set(registry.PROVIDERS)
