"""`[snapshots]` and `[[snapshots.sources]]`: the provider's backups to prove."""

from __future__ import annotations

import re

from durability.config.schema import Settings, setting

SOURCE_KINDS = ("s3", "ebs", "aws-backup", "restic")


def _check_pattern(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as error:
        return f"not a valid regular expression: {error}"
    unknown = set(compiled.groupindex) - {"set", "backup"}
    if unknown:
        names = ", ".join(sorted(unknown))
        return f"unknown named group(s) {names}; use (?P<set>...) and (?P<backup>...)"
    return None


class SourceSettings(Settings):
    """One snapshot source. Policy keys left unset take `[snapshots]` defaults."""

    name: str = setting(help="Name of the source, used as the result target.")
    kind: str = setting(help="What the source is.", choices=SOURCE_KINDS)
    # S3
    bucket: str | None = setting(None, help="s3: bucket name.", example='"backups"')
    prefix: str = setting("", help="s3: key prefix under which the backups live.")
    endpoint_url: str | None = setting(
        None, help="s3: endpoint of an S3-compatible provider.", example='"https://s3.example"'
    )
    region: str | None = setting(None, help="s3/ebs/aws-backup: region.", example='"eu-west-1"')
    profile: str | None = setting(None, help="AWS profile name.", example='"backups"')
    access_key_id: str | None = setting(
        None, help="s3 (and restic on S3): access key id.", example='"AKIA..."'
    )
    secret_access_key_file: str | None = setting(
        None,
        help="s3 (and restic on S3): file holding the secret access key.",
        example='"/etc/durability/s3"',
    )
    addressing_style: str = setting(
        "auto", choices=("auto", "path", "virtual"), help="s3: path or virtual-host addressing."
    )
    ca_bundle: str | None = setting(
        None,
        help="s3 (and restic, as --cacert): CA bundle to verify the endpoint's TLS certificate.",
        example='"/etc/ssl/certs/provider.pem"',
    )
    group_by: str | None = setting(
        None,
        help="s3: regular expression over the key (after the prefix). The named group "
        "`set` (else the first group, else the whole match) names the backup set, judged "
        "alone; the optional group `backup` joins the objects of one backup (a date in the "
        "key). Keys that do not match are counted and ignored. Unset: all objects under the "
        "prefix form one set and each object is one backup.",
        example=r'"^(?P<set>[^/]+)/(?P<backup>\\d{4}-\\d{2}-\\d{2})"',
        check=_check_pattern,
    )
    retries: int = setting(
        5,
        minimum=1,
        maximum=20,
        help="s3/ebs/aws-backup: attempts per request, with backoff, on throttling "
        "(SlowDown, 503) and timeouts.",
    )
    timeout: float = setting(
        60.0,
        kind="duration",
        help="Network timeout of one request (S3/AWS), or of one restic call times ten.",
    )
    # EBS
    volume_ids: tuple[str, ...] = setting(factory=tuple, help="ebs: volume ids.")
    tags: dict[str, str] = setting(factory=dict, help="ebs: volumes with these tags.")
    # AWS Backup
    vault: str | None = setting(
        None, help="aws-backup: vault name (this or resource_arn).", example='"Default"'
    )
    resource_arn: str | None = setting(
        None, help="aws-backup: only this resource (without vault: its points in every vault)."
    )
    # restic
    repository: str | None = setting(
        None, help="restic: repository (path or s3:URL).", example='"/srv/restic"'
    )
    password_file: str | None = setting(
        None,
        help="restic: file holding the repository password.",
        example='"/etc/durability/restic"',
    )
    restic_check_every: float | None = setting(
        None,
        kind="duration",
        help="restic: run `restic check` (index and trees, no pack data) when the last "
        "clean one is older than this; default the [snapshots] value.",
    )
    # Policy (None: take the [snapshots] default)
    max_age: float | None = setting(None, kind="duration", help="Newest must be younger.")
    grace: float | None = setting(None, kind="duration", help="WARNING band after max_age.")
    min_count: int | None = setting(None, minimum=0, help="At least this many snapshots.")
    max_shrink: float | None = setting(
        None, kind="percent-or-off", help='Newest vs previous size ("off": no shrink check).'
    )
    require_encrypted: bool | None = setting(None, help="Snapshots must be encrypted.")
    require_immutable: bool | None = setting(None, help="Object Lock or versioning required.")


class SnapshotSettings(Settings):
    """Defaults for every source, and the sources themselves."""

    enabled: bool = setting(True, help="Include snapshot sources in `durability check`.")
    max_age: float = setting(26 * 3600.0, kind="duration", help="Newest must be younger.")
    grace: float | None = setting(
        None, kind="duration", help="WARNING band after max_age; default a quarter of it."
    )
    min_count: int = setting(1, minimum=0, help="Fewer snapshots than this is WARNING.")
    max_shrink: float = setting(
        0.5,
        kind="percent-or-off",
        help='WARNING when the newest shrank more than this ("off": never); a newest '
        "snapshot of no data after one with data is always at least WARNING.",
        example='"30%"',
    )
    require_encrypted: bool = setting(False, help="Unencrypted snapshots are WARNING.")
    require_immutable: bool = setting(False, help="Mutable backups are WARNING.")
    concurrency: int = setting(8, minimum=1, maximum=64, help="Sources checked at once.")
    restic: str = setting("restic", help="The restic program (name or path).")
    restic_check: bool = setting(
        True,
        help="Run `restic check` (without --read-data) on restic sources on its own "
        "schedule, so damaged index or tree data is found even when listings look fine.",
    )
    restic_check_every: float = setting(
        22 * 3600.0,
        kind="duration",
        help="How old the last clean `restic check` of a repository may get before the "
        "next run checks it again.",
    )
    sources: tuple[SourceSettings, ...] = setting(factory=tuple, help="One table per source.")
