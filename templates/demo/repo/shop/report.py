"""A plain-text sales report."""

from shop.pricing import line_total


def sales_report(lines):
    """One line per order line and a total."""
    out = []
    total = 0
    for name, price, qty in lines:
        t = line_total(price, qty)
        total = total + t
        out.append(name + ": " + str(t))
    out.append("total: " + str(round(total, 2)))
    return "\n".join(out)
