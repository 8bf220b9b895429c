"""Helpline: a multichannel help-line for rural and community residents."""

__version__ = "0.1.0"
