"""Webhook notifications: which events, the outbox sender, and safe targets."""
