import unittest

from shop.pagination import page_count, paginate


class PaginationTest(unittest.TestCase):
    def test_first_page_starts_at_first_item(self):
        self.assertEqual(paginate(list(range(25)), 1, 10), list(range(10)))

    def test_last_page_is_partial(self):
        self.assertEqual(paginate(list(range(25)), 3, 10), [20, 21, 22, 23, 24])

    def test_page_count(self):
        self.assertEqual(page_count(list(range(25)), 10), 3)


if __name__ == "__main__":
    unittest.main()
