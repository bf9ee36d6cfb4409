"""Platform-neutral conversations (/kudos, /badge, /leaderboard, /me, /help) that drive the core."""
