"""Create the demo products, users and the demo user's past orders; running it again changes nothing."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from purchases.conf import purchases_setting
from purchases.models import Order, OrderLine, OrderStatus, Product

PRODUCTS = [
    ("KB-01", "Mechanical keyboard", Decimal("89.00"), 25),
    ("MS-01", "Wireless mouse", Decimal("29.50"), 40),
    ("MN-27", "27-inch monitor", Decimal("249.00"), 10),
    ("HD-01", "Noise-cancelling headphones", Decimal("159.90"), 15),
    ("CB-01", "USB-C cable", Decimal("9.99"), 100),
]

DEMO_USER = ("demo", os.environ.get("DEMO_PASSWORD", "demo-pass-123"))
DEMO_ADMIN = ("admin", os.environ.get("DEMO_ADMIN_PASSWORD", "admin-pass-123"))

# The demo user's paid orders, so the sales report has something to sum:
# (days ago, [(sku, quantity), ...]).
PAST_ORDERS = [
    (2, [("KB-01", 1), ("CB-01", 3)]),
    (6, [("MS-01", 2)]),
    (11, [("HD-01", 1), ("CB-01", 2)]),
    (19, [("MN-27", 1)]),
    (45, [("KB-01", 2)]),
]


class Command(BaseCommand):
    help = "Load demo products, a demo user and a staff user (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        for sku, name, price, stock in PRODUCTS:
            _, was_created = Product.objects.get_or_create(
                sku=sku, defaults={"name": name, "price": price, "stock": stock}
            )
            created += was_created
        self.stdout.write(f"Products: {created} created, {len(PRODUCTS) - created} already there.")

        User = get_user_model()
        for (username, password), staff in ((DEMO_USER, False), (DEMO_ADMIN, True)):
            user, was_created = User.objects.get_or_create(
                username=username,
                defaults={"is_staff": staff, "is_superuser": staff, "email": f"{username}@example.com"},
            )
            if was_created:
                user.set_password(password)
                user.save(update_fields=["password"])
            self.stdout.write(f"User {username!r}: {'created' if was_created else 'already there'}.")

        demo = User.objects.get(username=DEMO_USER[0])
        if Order.objects.filter(owner=demo).exists():
            self.stdout.write("Past orders of 'demo': already there.")
        else:
            self._past_orders(demo)
            self.stdout.write(f"Past orders of 'demo': {len(PAST_ORDERS)} created.")

    @staticmethod
    @transaction.atomic
    def _past_orders(owner: Any) -> None:
        products = {product.sku: product for product in Product.objects.all()}
        now = timezone.now()
        for days_ago, lines in PAST_ORDERS:
            order = Order.objects.create(
                owner=owner,
                status=OrderStatus.PAID,
                currency=purchases_setting("CURRENCY"),
                payment_reference=f"demo-{days_ago}",
                total=sum(
                    (products[sku].price * quantity for sku, quantity in lines), Decimal("0")
                ),
            )
            for sku, quantity in lines:
                OrderLine.objects.create(
                    order=order, product=products[sku], quantity=quantity, unit_price=products[sku].price
                )
            # created_at is set on insert; date the history back.
            Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(days=days_ago))
