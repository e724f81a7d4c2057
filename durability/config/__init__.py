"""Load and validate the TOML config into typed, frozen settings.

`load_config` reports every problem at once (`ConfigError.problems`), each naming its
key. With no file at all, `default_config()` gives working defaults so that
`durability raid` runs on a bare node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from durability.config.raid import RaidSettings
from durability.config.remind import RemindSettings, SmtpSettings
from durability.config.restore import RestoreSettings
from durability.config.schema import build, sample_lines, setting
from durability.config.service import ScheduleSettings
from durability.config.snapshots import SnapshotSettings, SourceSettings
from durability.config.state import StateSettings
from durability.config.status import StatusSettings
from durability.config.web import WebSettings
from durability.errors import ConfigError

DEFAULT_PATH = "/etc/durability/durability.toml"

__all__ = [
    "DEFAULT_PATH",
    "Config",
    "ConfigError",
    "RaidSettings",
    "RemindSettings",
    "RestoreSettings",
    "ScheduleSettings",
    "SmtpSettings",
    "SnapshotSettings",
    "SourceSettings",
    "StateSettings",
    "WebSettings",
    "default_config",
    "find_config_path",
    "load_config",
    "parse_config",
    "sample_config",
]


@dataclass(frozen=True)
class Config:
    """The whole configuration; every section has working defaults."""

    state: StateSettings = setting(factory=StateSettings, help="History and state store.")
    raid: RaidSettings = setting(factory=RaidSettings, help="md RAID health of this node.")
    snapshots: SnapshotSettings = setting(
        factory=SnapshotSettings, help="Provider snapshots to prove."
    )
    restore: RestoreSettings = setting(factory=RestoreSettings, help="Restore tests.")
    smtp: SmtpSettings = setting(factory=SmtpSettings, help="Outgoing mail for reminders.")
    remind: RemindSettings = setting(factory=RemindSettings, help="Customer reminders.")
    web: WebSettings = setting(factory=WebSettings, help="Customer links and status page.")
    schedule: ScheduleSettings = setting(factory=ScheduleSettings, help="Jobs of `durability run`.")
    status: StatusSettings = setting(factory=StatusSettings, help="Status page and fleet.")
    path: str | None = None


def default_config() -> Config:
    """Return the configuration used when no file exists."""
    return Config()


def find_config_path(explicit: str | None) -> tuple[str | None, bool]:
    """Return (path, must_exist): --config, else $DURABILITY_CONFIG, else the default.

    An explicitly named file must exist; the default path may be absent.
    """
    if explicit:
        return explicit, True
    env = os.environ.get("DURABILITY_CONFIG")
    if env:
        return env, True
    return DEFAULT_PATH, False


def parse_config(text: str, source: str = "config") -> Config:
    """Given TOML text, return validated settings. Raise ConfigError listing every problem."""
    import tomllib

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"not valid TOML: {error}"], source) from error
    problems: list[str] = []
    raw.pop("path", None)
    config = build(Config, raw, "", problems)
    names = [s.name for s in config.snapshots.sources] if config is not None else []
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(f"At 'snapshots.sources[{index}].name': duplicate source name {name!r}")
    if config is not None:
        problems.extend(_source_problems(config.snapshots.sources))
    if problems or config is None:
        raise ConfigError(problems or ["invalid configuration"], source)
    return Config(**{**config.__dict__, "path": source})


_REQUIRED_BY_KIND = {
    "s3": ("bucket",),
    "ebs": (),
    "aws-backup": ("vault",),
    "restic": ("repository", "password_file"),
}


def _source_problems(sources: tuple[SourceSettings, ...]) -> list[str]:
    problems = []
    for index, source in enumerate(sources):
        if source is None:
            continue
        for key in _REQUIRED_BY_KIND.get(source.kind, ()):
            if getattr(source, key) in (None, ""):
                problems.append(
                    f"At 'snapshots.sources[{index}].{key}': required for kind {source.kind!r}"
                )
        if source.kind == "ebs" and not source.volume_ids and not source.tags:
            problems.append(f"At 'snapshots.sources[{index}]': kind 'ebs' needs volume_ids or tags")
        if source.access_key_id and not source.secret_access_key_file:
            problems.append(
                f"At 'snapshots.sources[{index}].secret_access_key_file': required with "
                "access_key_id (secrets are only read from files)"
            )
    return problems


def load_config(explicit: str | None = None) -> Config:
    """Find, read and validate the config file; defaults when none is found.

    Raise ConfigError if the file is named but missing, unreadable or invalid.
    """
    path, must_exist = find_config_path(explicit)
    assert path is not None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError as error:
        if must_exist:
            raise ConfigError([f"file not found: {path}"], path) from error
        return default_config()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"cannot read: {error}"], path) from error
    return parse_config(text, path)


def sample_config() -> str:
    """Return a commented sample config documenting every key and its default."""
    header = [
        "# durability configuration (TOML). Every key is optional; shown values are defaults.",
        '# Durations: "30m", "26h", "7d". Secrets are only ever read from *_file paths.',
        "",
    ]
    body: list[str] = []
    import dataclasses

    for field in dataclasses.fields(Config):
        if field.name == "path":
            continue
        body.append(f"# {field.metadata.get('help', '')}")
        body.append(f"[{field.name}]")
        body.extend(
            sample_lines(
                field.type if isinstance(field.type, type) else type(getattr(Config(), field.name)),
                field.name,
            )
        )
    return "\n".join(header + body) + "\n"
