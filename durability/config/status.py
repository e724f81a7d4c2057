"""`[status]`: the status page login, the fleet's node tokens and customer placement."""

from __future__ import annotations

from durability.config.schema import Settings, setting


class StatusSettings(Settings):
    """Who may see the status page, which nodes may report, and where customers live."""

    users_file: str | None = setting(
        None,
        help="Older status page logins, one 'USER:HASH' a line, still accepted (new "
        "accounts: `durability users add USER`, kept in the state store).",
        example='"/etc/durability/status-users"',
    )
    node_tokens_file: str | None = setting(
        None,
        help="Older fleet node tokens, one 'NODE:SHA256-OF-TOKEN' a line, still accepted "
        "(new nodes: `durability nodes add NODE`, kept in the state store).",
        example='"/etc/durability/fleet-nodes"',
    )
    placement_file: str | None = setting(
        None,
        help="CSV 'customer_id,node,source': which node and snapshot source hold each "
        "customer, for the 3-2-1 picture.",
        example='"/etc/durability/placement.csv"',
    )
    session_lifetime: float = setting(
        12 * 3600.0, kind="duration", help="How long a status page login lasts."
    )
    chart_days: int = setting(30, minimum=1, maximum=400, help="Days shown in the charts.")
    customers_per_page: int = setting(
        200, minimum=10, maximum=5000, help="Customers per page of the 3-2-1 table."
    )
    no_own_copy_severity: str = setting(
        "info", choices=("info", "warning", "critical"),
        help="How a customer with no own copy on record yet counts on the status page: "
        "'info' (its own calm category, not a problem in the overall status), 'warning' "
        "or 'critical' (counted and sorted with the problems of that severity).",
        example='"warning"',
    )
