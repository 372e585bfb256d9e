"""Create the demo products and users; running it again changes nothing."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from purchases.models import Product

PRODUCTS = [
    ("KB-01", "Mechanical keyboard", Decimal("89.00"), 25),
    ("MS-01", "Wireless mouse", Decimal("29.50"), 40),
    ("MN-27", "27-inch monitor", Decimal("249.00"), 10),
    ("HD-01", "Noise-cancelling headphones", Decimal("159.90"), 15),
    ("CB-01", "USB-C cable", Decimal("9.99"), 100),
]

DEMO_USER = ("demo", os.environ.get("DEMO_PASSWORD", "demo-pass-123"))
DEMO_ADMIN = ("admin", os.environ.get("DEMO_ADMIN_PASSWORD", "admin-pass-123"))


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
