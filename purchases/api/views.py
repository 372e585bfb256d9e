"""Purchases API: products, the user's orders, and purchases as jobs."""

from __future__ import annotations

from rest_framework.generics import ListAPIView, RetrieveAPIView

from jobs.api.views import JobSubmitView
from purchases.models import Order, Product
from purchases.serializers import OrderSerializer, ProductSerializer


class ProductListView(ListAPIView):
    """Every product with its price and current stock."""

    serializer_class = ProductSerializer
    queryset = Product.objects.order_by("name", "id")
    pagination_class = None


class OrderQuerysetMixin:
    def get_queryset(self):
        return (
            Order.objects.filter(owner=self.request.user)
            .prefetch_related("lines__product")
            .order_by("-created_at", "-id")
        )


class OrderListView(OrderQuerysetMixin, ListAPIView):
    """The user's orders, newest first."""

    serializer_class = OrderSerializer


class OrderDetailView(OrderQuerysetMixin, RetrieveAPIView):
    """One of the user's orders; other users' orders are 404."""

    serializer_class = OrderSerializer


class PurchaseView(JobSubmitView):
    """``POST {"goods": [...]}``: 202 and a job that reserves, charges and confirms."""

    kind = "purchases.execute"
