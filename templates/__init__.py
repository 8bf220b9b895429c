"""Jinja2 templates for the resident portal and the operator console (shipped as package data)."""
