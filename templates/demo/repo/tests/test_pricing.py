import unittest

from shop.pricing import line_total


class PricingTest(unittest.TestCase):
    def test_line_total(self):
        self.assertEqual(line_total(2.5, 3), 7.5)


if __name__ == "__main__":
    unittest.main()
