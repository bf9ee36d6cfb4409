"""Admin controls: revoking awards and kudos, locking a member's giving, moving a nomination
campaign on, and the audit log that records each of these with who, what, when and why.

`rewards.admin.service.AdminService` (`core.admin`) is what the chat, the CLI and the API call;
`rewards.admin.locks` is also read by the giving paths (kudos, badges, nominations, votes).
This module imports nothing, so those paths can import `locks` without the service.
"""
