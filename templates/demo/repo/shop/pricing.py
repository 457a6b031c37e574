"""Prices of order lines."""


def line_total(price, quantity):
    """Price times quantity, rounded to cents."""
    return round(price * quantity, 2)
