"""Screens built once from the core's views and rendered per platform: Adaptive Cards for Teams,
Block Kit for Slack, HTML with inline keyboards for Telegram, and plain text for the console."""
