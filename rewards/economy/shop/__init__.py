"""The rewards shop: items members spend their points on, redemptions and their approvals.

- `model`: what callers see (`ShopItem`, `Offer`, `Balance`, `RedemptionView`);
- `file`: the shop file format (JSON), validated with every problem named by item and field;
- `store`: loading validated items into the database and reading them back;
- `service`: `ShopService` (`core.shop`), the one entry point for chat, CLI and API.

Balances live in `rewards.economy.balance`, the redemption writes in
`rewards.economy.redemptions`, their notifications in `rewards.economy.redemption_notices`.
"""
