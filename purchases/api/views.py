"""Purchases API: products, the user's orders, and purchases as jobs."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import current_job, runs_as_job
from jobs.api import public as docs
from jobs.api.public import JobsRateThrottle, job_capable_schema
from purchases.api.schema import (
    PURCHASE_EXAMPLES,
    PURCHASE_KIND,
    REPORT_KIND,
    PurchaseResultSerializer,
)
from purchases.conf import purchases_setting
from purchases.models import Order, Product
from purchases.operations import abandon_purchase, execute_purchase
from purchases.reports import sales_report
from purchases.serializers import (
    OrderSerializer,
    ProductSerializer,
    PurchaseSerializer,
    SalesReportResultSerializer,
    SalesReportSerializer,
)


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


@job_capable_schema(
    PurchaseSerializer,
    PurchaseResultSerializer,
    always=True,
    inline_status=201,
    summary="Buy products (a job)",
    description="Validates the body at once (`400` with field errors, no job), then answers `202` with a "
    "pending job that reserves stock, charges the payment and confirms the order. Poll `Location`; "
    "the completed job's `result` is the order. Out of stock or a declined card end the job `failed` "
    "(`insufficient_stock`, `payment_declined`); unknown fields at the top level are refused. "
    "Always a job; `Prefer: respond-async, wait=N` answers `201` and the order inline if it "
    "completed within N seconds.",
    request_examples=PURCHASE_EXAMPLES,
    tags=["shop"],
)
class PurchaseView(APIView):
    """``POST {"goods": [...]}``: 202 and a job that reserves, charges and confirms."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.submit"

    @runs_as_job(
        kind=PURCHASE_KIND,
        input=PurchaseSerializer,
        timeout=purchases_setting("TIMEOUT"),
        max_attempts=3,
        on_abandon=abandon_purchase,
        always=True,
    )
    def post(self, request: Request) -> Response:
        serializer = PurchaseSerializer(data=request.data, context={"owner": request.user})
        serializer.is_valid(raise_exception=True)
        order = execute_purchase(current_job(), serializer.validated_data)
        return Response(order, status=status.HTTP_201_CREATED)


class SalesReportView(APIView):
    """``POST {"date_from", "date_to"}``: the user's sales per product, inline or as a job."""

    throttle_classes = [JobsRateThrottle]
    throttle_scope = "jobs.submit"

    @job_capable_schema(
        SalesReportSerializer,
        SalesReportResultSerializer,
        tags=["shop"],
        operation_id="reports_sales",
        summary="Sales report (inline, or a job on request)",
        description="Your paid orders' totals per product from `date_from` to `date_to` "
        "(inclusive; both optional, default the last 30 days). Answers inline by default; send "
        "`Prefer: respond-async` for a job whose `result` is the same report.",
    )
    @runs_as_job(
        kind=REPORT_KIND,
        input=SalesReportSerializer,
        timeout=purchases_setting("REPORT_TIMEOUT"),
        ttl=timedelta(days=1),
        # Reading the report again changes nothing: its owner may retry it.
        retryable=True,
        # One report at a time per user, and (JOBS["QUEUE_LIMITS"]) two at once in all.
        queue="reports",
        per_owner_limit=1,
        per_owner_message="Waiting: you have a report running",
    )
    def post(self, request: Request) -> Response:
        serializer = SalesReportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(sales_report(owner=request.user, **serializer.validated_data))
