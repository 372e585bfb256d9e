"""Reserving and re-reserving an order take stock the same way: all of it, or none and a JobError."""

from __future__ import annotations

import pytest

from jobs import JobError
from jobs.models import Job
from purchases.models import Order, OrderStatus, Product
from purchases.services import order_release, order_rereserve, order_reserve

pytestmark = pytest.mark.django_db


def stock(*products: Product) -> tuple[int, ...]:
    return tuple(Product.objects.get(pk=p.pk).stock for p in products)


def reserve(user, *goods: tuple[Product, int], missing: int | None = None) -> Order:
    """Reserve ``goods`` for a new job of ``user``'s; ``missing`` adds a line for a product id that does not exist."""
    lines = [{"product_id": p.pk, "quantity": q} for p, q in goods]
    if missing is not None:
        lines.append({"product_id": missing, "quantity": 1})
    job = Job.objects.create(kind="purchases.execute", owner=user)
    return order_reserve(job_id=job.pk, owner_id=user.pk, goods=lines)


def test_reserve_takes_the_stock_of_every_line(user, make_product):
    pen, ink = make_product(stock=5), make_product(stock=3)
    order = reserve(user, (pen, 2), (ink, 3))
    assert order.status == OrderStatus.RESERVED
    assert stock(pen, ink) == (3, 0)


def test_reserve_short_of_one_product_takes_nothing(user, make_product):
    pen, ink = make_product(stock=5), make_product(stock=1)
    with pytest.raises(JobError) as caught:
        reserve(user, (pen, 2), (ink, 2))
    assert caught.value.code == "insufficient_stock"
    assert stock(pen, ink) == (5, 1)
    assert not Order.objects.exists()


def test_reserve_of_a_missing_product_takes_nothing(user, make_product):
    pen = make_product(stock=5)
    with pytest.raises(JobError) as caught:
        reserve(user, (pen, 1), missing=pen.pk + 1000)
    assert caught.value.code == "product_unavailable"
    assert stock(pen) == (5,)


def test_rereserve_takes_the_stock_again(user, make_product):
    pen = make_product(stock=5)
    order = order_release(order=reserve(user, (pen, 2)), reason="declined")
    assert stock(pen) == (5,)

    again = order_rereserve(order=order)

    assert (again.status, again.payment_attempt) == (OrderStatus.RESERVED, order.payment_attempt + 1)
    assert stock(pen) == (3,)


def test_rereserve_short_takes_nothing_and_leaves_the_order_released(user, make_product):
    pen, ink = make_product(stock=5), make_product(stock=5)
    order = order_release(order=reserve(user, (pen, 2), (ink, 2)), reason="declined")
    Product.objects.filter(pk=ink.pk).update(stock=1)

    with pytest.raises(JobError) as caught:
        order_rereserve(order=order)

    assert caught.value.code == "insufficient_stock"
    assert stock(pen, ink) == (5, 1)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RELEASED
