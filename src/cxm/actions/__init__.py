"""The closed loop: rules open cases; routing, SLAs, notifications, root causes, initiatives."""
