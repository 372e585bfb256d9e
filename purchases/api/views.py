"""Purchases API: products, the user's orders, and purchases as jobs."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView

from jobs.api import schema as docs
from jobs.api.views import JobSubmitView
from purchases.api.schema import PURCHASE_EXAMPLES
from purchases.models import Order, Product
from purchases.serializers import OrderSerializer, ProductSerializer, PurchaseSerializer


@extend_schema(
    tags=["shop"],
    summary="List products",
    parameters=[docs.WWW_AUTHENTICATE_ON_401],
    responses={
        200: OpenApiResponse(ProductSerializer(many=True), description="All products."),
        401: docs.UNAUTHORIZED,
    },
)
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


@extend_schema(
    tags=["shop"],
    summary="List your orders",
    description="Your orders, newest first, paginated by page number.",
    parameters=[docs.WWW_AUTHENTICATE_ON_401],
    responses={
        200: OpenApiResponse(OrderSerializer(many=True), description="A page of your orders."),
        401: docs.UNAUTHORIZED,
        404: docs.error_response("No such page (`Invalid page.`)."),
    },
)
class OrderListView(OrderQuerysetMixin, ListAPIView):
    """The user's orders, newest first."""

    serializer_class = OrderSerializer


@extend_schema(
    tags=["shop"],
    summary="Get an order",
    parameters=[
        OpenApiParameter(
            "id",
            type=int,
            location=OpenApiParameter.PATH,
            description="The order id (`result.order_id` of a completed purchase).",
        ),
        docs.WWW_AUTHENTICATE_ON_401,
    ],
    responses={
        200: OpenApiResponse(OrderSerializer, description="The order."),
        401: docs.UNAUTHORIZED,
        404: docs.error_response("No such order for you: unknown ids and other users' orders alike."),
    },
)
class OrderDetailView(OrderQuerysetMixin, RetrieveAPIView):
    """One of the user's orders; other users' orders are 404."""

    serializer_class = OrderSerializer


@docs.submit_schema(
    PurchaseSerializer,
    summary="Buy products (a job)",
    description="Validates the body at once (`400` with field errors, no job), then answers `202` with a "
    "pending job that reserves stock, charges the payment and confirms the order. Poll `Location`; "
    "the completed job's `result` is the order. Out of stock or a declined card end the job `failed` "
    "(`insufficient_stock`, `payment_declined`); unknown fields at the top level are refused.",
    request_examples=PURCHASE_EXAMPLES,
    tags=["shop"],
)
class PurchaseView(JobSubmitView):
    """``POST {"goods": [...]}``: 202 and a job that reserves, charges and confirms."""

    kind = "purchases.execute"
