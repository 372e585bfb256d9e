from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from purchases.models import Order, OrderLine, PaymentCharge, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "stock"]
    search_fields = ["sku", "name"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    readonly_fields = ["product", "quantity", "unit_price"]
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "status", "total", "currency", "job_link", "created_at"]
    list_filter = ["status"]
    list_select_related = ["owner", "job"]
    search_fields = ["=id", "owner__username", "payment_reference"]
    readonly_fields = ["owner", "job", "status", "failure_code", "total", "currency",
                       "payment_reference", "created_at", "updated_at"]
    inlines = [OrderLineInline]

    @admin.display(description="job")
    def job_link(self, order: Order) -> str:
        if order.job_id is None:
            return "-"
        url = reverse("admin:jobs_job_change", args=[order.job_id])
        return format_html('<a href="{}">{}</a>', url, str(order.job_id)[:8])


@admin.register(PaymentCharge)
class PaymentChargeAdmin(admin.ModelAdmin):
    list_display = ["reference", "amount", "currency", "idempotency_key", "created_at"]
    search_fields = ["reference", "idempotency_key"]
