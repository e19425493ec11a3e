"""Employees: the directory (teams over time), pulse results under a confidentiality rule,
team EX beside the CX of the touchpoints each team owns."""
