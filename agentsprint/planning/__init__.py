"""Forecasts and capacity planning: pure functions over items and the history of done items."""
