"""Fake provider APIs (Twilio, Telegram) that speak the real wire protocol, for tests."""
