"""Load and validate the TOML config into typed, frozen settings.

`load_config` reports every problem at once (`ConfigError.problems`), each naming its
key. With no file at all, `default_config()` gives working defaults so that
`durability raid` runs on a bare node.
"""

from __future__ import annotations

import importlib
import os

from durability.config.schema import build, sample_lines
from durability.errors import ConfigError

TYPE_CHECKING = False  # typing costs the cron job more than the check

if TYPE_CHECKING:
    from typing import Any

    from durability.config.raid import RaidSettings
    from durability.config.remind import RemindSettings, SmtpSettings
    from durability.config.restore import RestoreSettings
    from durability.config.service import ScheduleSettings
    from durability.config.snapshots import SnapshotSettings, SourceSettings
    from durability.config.state import StateSettings
    from durability.config.status import StatusSettings
    from durability.config.web import WebSettings

DEFAULT_PATH = "/etc/durability/durability.toml"

# section: (module, class, help). A section's module is imported only when the section
# is used, so `durability raid` pays for the state and raid sections alone.
SECTIONS: dict[str, tuple[str, str, str]] = {
    "state": ("durability.config.state", "StateSettings", "History and state store."),
    "raid": ("durability.config.raid", "RaidSettings", "md RAID health of this node."),
    "snapshots": (
        "durability.config.snapshots",
        "SnapshotSettings",
        "Provider snapshots to prove.",
    ),
    "restore": ("durability.config.restore", "RestoreSettings", "Restore tests."),
    "smtp": ("durability.config.remind", "SmtpSettings", "Outgoing mail for reminders."),
    "remind": ("durability.config.remind", "RemindSettings", "Customer reminders."),
    "web": ("durability.config.web", "WebSettings", "Customer links and status page."),
    "schedule": ("durability.config.service", "ScheduleSettings", "Jobs of `durability run`."),
    "status": ("durability.config.status", "StatusSettings", "Status page login and fleet nodes."),
}

__all__ = [
    "DEFAULT_PATH",
    "SECTIONS",
    "Config",
    "ConfigError",
    "default_config",
    "find_config_path",
    "load_config",
    "missing_input_files",
    "parse_config",
    "sample_config",
    "section_class",
]


def section_class(name: str) -> type[Any]:
    """Return the settings class of a section, importing its module."""
    module, cls, _ = SECTIONS[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


class Config:
    """The whole configuration; every section has working defaults.

    Sections are validated when first used (`durability raid` never reads `[smtp]`), or
    all at once by `parse_config(..., lazy=False)` and `durability config validate`.
    Sections may also be given ready-made: `Config(raid=RaidSettings(...))`.
    """

    def __init__(
        self, path: str | None = None, raw: dict[str, Any] | None = None, **sections: Any
    ) -> None:
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise TypeError(f"Config has no section {', '.join(sorted(unknown))}")
        self.path = path
        # The default file that was looked for and not found (None: a file was read,
        # or the config was built in code).
        self.looked_for: str | None = None
        self._raw = raw or {}
        self._sections: dict[str, Any] = dict(sections)

    @property
    def origin(self) -> str:
        """Return where the settings came from, for messages: the file or its absence."""
        if self.path:
            return f"config {self.path}"
        if self.looked_for:
            return (
                f"no config file ({self.looked_for} not found, give --config FILE or "
                "set $DURABILITY_CONFIG)"
            )
        return "built-in defaults"

    def section(self, name: str) -> Any:
        """Return one validated section. Raise ConfigError listing its problems."""
        if name not in self._sections:
            problems: list[str] = []
            value = _build_section(name, self._raw.get(name, {}), problems)
            if problems:
                raise ConfigError(problems, self.path or "config")
            self._sections[name] = value
        return self._sections[name]

    def validate(self) -> None:
        """Validate every section, raising one ConfigError with every problem."""
        problems: list[str] = []
        for name in SECTIONS:
            if name in self._sections:
                continue
            value = _build_section(name, self._raw.get(name, {}), problems)
            if value is not None:
                self._sections[name] = value
        if problems:
            for name in SECTIONS:
                self._sections.pop(name, None)
            raise ConfigError(problems, self.path or "config")

    @property
    def state(self) -> StateSettings:
        return self.section("state")  # type: ignore[no-any-return]

    @property
    def raid(self) -> RaidSettings:
        return self.section("raid")  # type: ignore[no-any-return]

    @property
    def snapshots(self) -> SnapshotSettings:
        return self.section("snapshots")  # type: ignore[no-any-return]

    @property
    def restore(self) -> RestoreSettings:
        return self.section("restore")  # type: ignore[no-any-return]

    @property
    def smtp(self) -> SmtpSettings:
        return self.section("smtp")  # type: ignore[no-any-return]

    @property
    def remind(self) -> RemindSettings:
        return self.section("remind")  # type: ignore[no-any-return]

    @property
    def web(self) -> WebSettings:
        return self.section("web")  # type: ignore[no-any-return]

    @property
    def schedule(self) -> ScheduleSettings:
        return self.section("schedule")  # type: ignore[no-any-return]

    @property
    def status(self) -> StatusSettings:
        return self.section("status")  # type: ignore[no-any-return]


def _build_section(name: str, raw: Any, problems: list[str]) -> Any:
    value = build(section_class(name), raw, name, problems)
    if name == "snapshots" and value is not None:
        problems.extend(_source_problems(value.sources))
    return value


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


def parse_config(text: str, source: str = "config", lazy: bool = False) -> Config:
    """Given TOML text, return validated settings. Raise ConfigError listing every problem.

    With `lazy`, only the top level is checked now and each section when first used.
    """
    return config_from_raw(_parse_toml(text, source), source, lazy)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"not valid TOML: {error}"], source) from error


def config_from_raw(raw: dict[str, Any], source: str, lazy: bool = False) -> Config:
    """Given a parsed TOML document, return the config (see `parse_config`)."""
    problems = []
    for key, value in raw.items():
        if key not in SECTIONS:
            import difflib

            hint = difflib.get_close_matches(key, list(SECTIONS), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(f"At '{key}': unknown section{suggestion}")
        elif not isinstance(value, dict):
            problems.append(f"At '{key}': expected a table ([{key}])")
    config = Config(path=source, raw={k: v for k, v in raw.items() if k in SECTIONS})
    if not lazy:
        try:
            config.validate()
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems, source)
    return config


_REQUIRED_BY_KIND = {
    "s3": ("bucket",),
    "ebs": (),
    "aws-backup": (),
    "restic": ("repository", "password_file"),
}


def _source_problems(sources: tuple[SourceSettings, ...]) -> list[str]:
    problems = []
    names = [s.name for s in sources if s is not None]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(f"At 'snapshots.sources[{index}].name': duplicate source name {name!r}")
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
        if source.kind == "aws-backup" and not source.vault and not source.resource_arn:
            problems.append(
                f"At 'snapshots.sources[{index}]': kind 'aws-backup' needs vault or resource_arn"
            )
        if source.access_key_id and not source.secret_access_key_file:
            problems.append(
                f"At 'snapshots.sources[{index}].secret_access_key_file': required with "
                "access_key_id (secrets are only read from files)"
            )
    return problems


# Files the config names that must already exist: secrets and certificates are read,
# never created. (Lock, users and token files are created by durability itself.)
INPUT_FILE_KEYS = frozenset(
    {"password_file", "secret_access_key_file", "ca_file", "secret_file", "report_token_file"}
)


def missing_input_files(config: Config) -> list[str]:
    """Return a problem for every secret or certificate file the config names that is absent.

    Only `durability config validate` asks: at run time a missing file is the reason
    of that source's UNKNOWN, so one bad source never stops the others.
    """
    problems: list[str] = []
    for name in SECTIONS:
        _missing_files(config.section(name), name, problems)
    return problems


def _missing_files(value: Any, path: str, problems: list[str]) -> None:
    from durability.config.schema import Settings

    if isinstance(value, tuple):
        for index, item in enumerate(value):
            _missing_files(item, f"{path}[{index}]", problems)
        return
    if not isinstance(value, Settings):
        return
    for attribute in type(value).__fields__:
        item = getattr(value, attribute)
        key = f"{path}.{attribute.rstrip('_')}"
        if attribute in INPUT_FILE_KEYS and isinstance(item, str) and item:
            if not os.path.isfile(item):
                why = "no such file" if not os.path.exists(item) else "not a regular file"
                problems.append(f"At '{key}': {why}: {item}")
            elif not os.access(item, os.R_OK):
                problems.append(f"At '{key}': not readable by this user: {item}")
        else:
            _missing_files(item, key, problems)


def load_config(explicit: str | None = None, lazy: bool = False) -> Config:
    """Find, read and validate the config file; defaults when none is found.

    Raise ConfigError if the file is named but missing, unreadable or invalid (with
    `lazy`, a section's problems are raised when that section is first used, and the
    parsed file may come from the parse cache, see `read_parsed_cache`).
    """
    path, must_exist = find_config_path(explicit)
    assert path is not None
    try:
        with open(path, "rb") as handle:
            identity = _file_identity(os.fstat(handle.fileno()))
            raw = read_parsed_cache(path, identity) if lazy else None
            if raw is None:
                text = handle.read().decode("utf-8")
    except FileNotFoundError as error:
        if must_exist:
            raise ConfigError([f"file not found: {path}"], path) from error
        config = default_config()
        config.looked_for = path
        return config
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"cannot read: {error}"], path) from error
    if raw is None:
        raw = _parse_toml(text, path)
        if lazy:
            write_parsed_cache(path, identity, raw)
    return config_from_raw(raw, path, lazy=lazy)


# The parse cache: the cron job runs every few minutes with a file that rarely changes,
# and parsing TOML (tomllib pulls in `typing`) costs about as much as the whole check.
# The parsed document is kept as JSON, keyed by the file's inode, size and mtime; any
# change to the file, or a cache file not owned by this user or writable by others,
# means the TOML is parsed again. Validation always runs on what is loaded.


def _file_identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns]


def _cache_path(config_path: str) -> str | None:
    if os.environ.get("DURABILITY_NO_CONFIG_CACHE"):
        return None
    if os.environ.get("DURABILITY_CACHE_DIR"):
        base = os.environ["DURABILITY_CACHE_DIR"]
    elif os.geteuid() == 0:
        base = "/var/cache/durability"
    else:
        base = os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
            "durability",
        )
    name = os.path.abspath(config_path).replace("%", "%25").replace("/", "%2F")
    return os.path.join(base, f"config{name}.json")


def read_parsed_cache(config_path: str, identity: list[int]) -> dict[str, Any] | None:
    """Return the cached parse of a config file if it is current and trustworthy."""
    cache = _cache_path(config_path)
    if cache is None:
        return None
    import json

    try:
        with open(cache, encoding="utf-8") as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_uid != os.geteuid() or stat.st_mode & 0o022:
                return None
            document = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("identity") != identity:
        return None
    raw = document.get("raw")
    return raw if isinstance(raw, dict) else None


def write_parsed_cache(config_path: str, identity: list[int], raw: dict[str, Any]) -> None:
    """Store a parsed config for the next run; failing to cache is never an error."""
    cache = _cache_path(config_path)
    if cache is None:
        return
    import json

    try:
        text = json.dumps({"identity": identity, "raw": raw})
    except (TypeError, ValueError):
        return  # TOML dates and times have no JSON form: such a file is parsed each run
    tmp = f"{cache}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, cache)
    except OSError:
        try:  # noqa: SIM105 - contextlib is not imported on the cron path
            os.unlink(tmp)
        except OSError:
            pass


def sample_config() -> str:
    """Return a commented sample config documenting every key and its default."""
    lines = [
        "# durability configuration (TOML). Every key is optional; shown values are defaults.",
        '# Durations: "30m", "26h", "7d". Secrets are only ever read from *_file paths.',
        "",
    ]
    for name, (_, _, help_text) in SECTIONS.items():
        lines.append(f"# {help_text}")
        lines.append(f"[{name}]")
        lines.extend(sample_lines(section_class(name), name))
    return "\n".join(lines) + "\n"
