"""Connectors to the tools teams already use: helpdesk exports."""
