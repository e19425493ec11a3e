"""The demo company: a realistic company with known ground truth, and its loader."""
