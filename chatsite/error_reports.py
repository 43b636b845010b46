"""Django's error reports (the DEBUG page, the admins' mail) never show a provider key.

`sensitive_post_parameters` masks the key form's field; this filter also masks anything shaped
like a registered provider's key (providers/registry.py) in every frame's local variables,
wherever a crash happens (an SDK client, a header dict, a service's arguments).
"""

from __future__ import annotations

from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from providers import registry

MASK = "********"


class KeyScrubbingFilter(SafeExceptionReporterFilter):
    def is_active(self, request: Any) -> bool:
        # Django shows everything when DEBUG is on; a key is masked on a developer's screen too.
        return True

    def get_post_parameters(self, request: Any) -> Any:
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        scrubbed = parameters.copy()
        for name in scrubbed:
            scrubbed[name] = registry.key_shapes().sub(MASK, str(scrubbed[name]))
        return scrubbed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, _scrub(value)) for name, value in variables]


def _scrub(value: Any) -> Any:
    try:
        shown = repr(value)
    except Exception:
        return value
    if registry.key_shapes().search(shown) is None:
        return value
    return registry.key_shapes().sub(MASK, shown)
