"""`[web]`: customer links and the status page served by `durability serve`."""

from __future__ import annotations

from durability.config.schema import Settings, setting


class WebSettings(Settings):
    """The HTTP side: signed customer links and the status page."""

    base_url: str = setting(
        "http://127.0.0.1:8080",
        help="Public base URL of the links in emails (HTTPS in production).",
    )
    secret_file: str | None = setting(
        None,
        help="File holding the secret that signs customer links (create it with "
        "`head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE`).",
        example='"/etc/durability/web-secret"',
    )
    listen: str | None = setting(
        None,
        help="HOST:PORT for `durability run` to serve on as well; unset: no HTTP.",
        example='"127.0.0.1:8080"',
    )
