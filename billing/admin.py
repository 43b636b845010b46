"""The admin for coins and usage: read-only records, coins moved only through the ledger."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from billing import services
from billing.dashboard import Dashboard, dashboard
from billing.forms import AdjustCoinsForm, DashboardRangeForm
from billing.models import CoinAccount, LedgerEntry, LlmUsage
from chatsite.charts import Bar, bar_chart, day_bars, hbar_chart
from providers import catalogue, registry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fk_name = "account"
    extra = 0
    fields = ("created_at", "kind", "amount", "balance_after", "reason", "message_id", "created_by")
    readonly_fields = fields
    ordering = ("-id",)
    can_delete = False
    max_num = 0
    show_change_link = True


@admin.register(CoinAccount)
class CoinAccountAdmin(admin.ModelAdmin):
    list_display = ("user", "balance", "updated_at", "drill_down")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("user", "balance", "updated_at", "drill_down")
    fields = readonly_fields
    inlines = [LedgerEntryInline]
    actions = ["adjust_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Drill down")
    def drill_down(self, account: CoinAccount) -> str:
        user_id = account.user_id
        return format_html(
            '<a href="{}?owner__id__exact={}">conversations</a> · '
            '<a href="{}?conversation__owner__id__exact={}">messages</a> · '
            '<a href="{}?user__id__exact={}">provider calls</a> · '
            '<a href="{}">usage page</a> · '
            '<a href="{}">grant or deduct</a>',
            reverse("admin:chat_conversation_changelist"), user_id,
            reverse("admin:chat_message_changelist"), user_id,
            reverse("admin:billing_llmusage_changelist"), user_id,
            reverse("person-usage", args=[user_id]),
            reverse("admin:billing_coinaccount_adjust", args=[account.pk]),
        )  # fmt: skip

    def get_urls(self) -> list[Any]:
        adjust = self.admin_site.admin_view(self.adjust_view)
        return [
            path("adjust/<str:ids>/", adjust, name="billing_coinaccount_adjust"),
            *super().get_urls(),
        ]

    @admin.action(description="Grant or deduct coins for the selected people")
    def adjust_selected(self, request: HttpRequest, queryset: QuerySet[CoinAccount]) -> Any:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(reverse("admin:billing_coinaccount_adjust", args=[ids]))

    def adjust_view(self, request: HttpRequest, ids: str) -> HttpResponse:
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        try:
            pks = [int(pk) for pk in ids.split(",")][:500]
        except ValueError:
            return HttpResponse(status=404)
        accounts = list(CoinAccount.objects.filter(pk__in=pks).select_related("user"))
        if not accounts:
            get_object_or_404(CoinAccount, pk=-1)
        form = AdjustCoinsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done, refused = self._apply(request, form, accounts)
            if done:
                messages.success(request, f"Applied to {done} account(s).")
            for name in refused:
                messages.error(request, f"{name}: a deduction cannot take the balance below zero.")
            return HttpResponseRedirect(reverse("admin:billing_coinaccount_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant or deduct coins",
            "accounts": accounts,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/coinaccount/adjust.html", context)

    def _apply(
        self, request: HttpRequest, form: AdjustCoinsForm, accounts: list[CoinAccount]
    ) -> tuple[int, list[str]]:
        done, refused = 0, []
        for account in accounts:
            try:
                services.coins_adjust(
                    user_id=account.user_id,
                    amount=form.signed_amount(),
                    reason=form.cleaned_data["reason"],
                    reference=f"admin:{form.cleaned_data['token']}:{account.pk}",
                    created_by_id=request.user.pk,
                )
                done += 1
            except services.InsufficientCoins:
                refused.append(str(account.user))
        return done, refused


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "kind",
        "amount",
        "balance_after",
        "reason",
        "reference",
    )
    list_filter = ("kind",)
    search_fields = ("account__user__username", "reference")
    list_select_related = ("account__user",)


@admin.register(LlmUsage)
class LlmUsageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at", "user", "model", "provider", "status", "byok", "purpose", "round", "attempt",
        "input_tokens", "output_tokens", "coins_charged", "cost_usd",
        "time_to_first_token_ms", "duration_ms",
    )  # fmt: skip
    list_filter = ("provider", "model", "status", "byok", "purpose", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("user__username",)
    list_select_related = ("user",)
    actions = ["refund_selected"]

    def get_urls(self) -> list[Any]:
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("dashboard/", dashboard, name="billing_llmusage_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Charts and tables of the provider calls over a range (billing/dashboard.py)."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        # The choices come from the catalogue and the registry: a DISTINCT over a million
        # calls would cost the page more than its charts do.
        form = DashboardRangeForm(
            request.GET,
            providers=list(registry.PROVIDERS),
            models=[model.id for model in catalogue.models()],
        )
        shown = None
        if form.is_valid():
            data = form.cleaned_data
            shown = dashboard(
                data["start"],
                data["end"],
                provider=data.get("provider") or "",
                model=data.get("model") or "",
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage dashboard",
            "opts": self.model._meta,
            "form": form,
            "board": shown,
            "charts": _dashboard_charts(shown) if shown else [],
        }
        return TemplateResponse(request, "admin/billing/llmusage/dashboard.html", context)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        # Refunds move coins: only for admins who may change coin accounts.
        return bool(request.user.has_perm("billing.change_coinaccount"))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context: dict[str, Any] = getattr(response, "context_data", None) or {}
        changelist = context.get("cl")
        if changelist is not None:
            context["totals"] = changelist.queryset.aggregate(
                calls=Count("id"),
                input_tokens=Sum("input_tokens"),
                output_tokens=Sum("output_tokens"),
                cost_usd=Sum("cost_usd"),
                coins=Sum("coins_charged"),
            )
        return response

    @admin.action(
        description="Refund the coins charged for the selected calls", permissions=["refund"]
    )
    def refund_selected(self, request: HttpRequest, queryset: QuerySet[LlmUsage]) -> None:
        refunded = 0
        for usage in queryset:
            entry = services.coins_refund(
                usage=usage, reason=f"Refund of call {usage.pk}", created_by_id=request.user.pk
            )
            refunded += entry.amount if entry else 0
        messages.success(request, f"Refunded {refunded} coins (each call is refunded once).")


def _dashboard_charts(board: Dashboard) -> list[tuple[str, SafeString]]:
    """The day charts (replies, tokens, coins, errors) and the coins per model, with their
    headings."""
    days = board.days
    label_every = max(1, len(days) // 8)

    def per_day(title: str, figure: Any, unit: str, chart_id: str) -> SafeString:
        bars = day_bars(
            [(day.day, int(figure(day.totals))) for day in days],
            units=(unit.removesuffix("s"), unit),
            every=label_every,
        )
        total = sum(bar.value for bar in bars)
        return bar_chart(
            bars,
            title=f"{title} per day",
            description=f"{total:,} {unit} from {board.start:%B %-d} to {board.end:%B %-d}.",
            chart_id=chart_id,
        )

    coins_by_model = [
        Bar(label=row.model, value=row.totals.coins, tooltip=f"{row.model}: {row.totals.coins:,}")
        for row in board.models
    ]
    return [
        ("Replies per day", per_day("Replies", lambda t: t.replies, "replies", "chart-replies")),
        (
            "Tokens per day (in and out)",
            per_day("Tokens", lambda t: t.input_tokens + t.output_tokens, "tokens", "chart-tokens"),
        ),
        ("Coins per day", per_day("Coins", lambda t: t.coins, "coins", "chart-coins")),
        ("Errors per day", per_day("Errors", lambda t: t.errors, "errors", "chart-errors")),
        (
            "Coins per model",
            hbar_chart(
                coins_by_model,
                title="Coins per model",
                description=f"{board.totals.coins:,} coins over {len(board.models)} models.",
                chart_id="chart-models",
            ),
        ),
    ]
