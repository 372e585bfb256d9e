from django.urls import path

from purchases.api import views

app_name = "purchases"

urlpatterns = [
    path("products/", views.ProductListView.as_view(), name="product-list"),
    path("orders/", views.OrderListView.as_view(), name="order-list"),
    path("orders/<int:pk>/", views.OrderDetailView.as_view(), name="order-detail"),
    path("purchases/", views.PurchaseView.as_view(), name="purchase"),
    path("reports/sales/", views.SalesReportView.as_view(), name="sales-report"),
]
