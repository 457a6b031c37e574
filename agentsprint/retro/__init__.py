"""The retro: pure metrics over the recorded history, findings in words, and md/html/json/csv renderers."""
