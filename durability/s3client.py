"""Build boto3 clients for S3-compatible providers and AWS: the one boto3 seam's setup.

Every client uses signature v4, the configured addressing style, request checksums
only "when_required" (boto3 1.36 and newer otherwise send CRC checksums that Ceph RGW,
OVHcloud, Hetzner and Backblaze B2 reject over HTTPS), retries with backoff on
throttling (SlowDown, 503) and timeouts, and reads the secret key from a file.
boto3 is imported here only, when a client is built.
"""

from __future__ import annotations

from typing import Any

from durability.config.snapshots import SourceSettings
from durability.errors import ProbeError

DEFAULT_REGION = "us-east-1"

# One botocore data loader for every session: sessions are made per source and thread,
# and each would otherwise parse the service models again (a few hundred ms each).
_shared_loader: Any = None


def read_secret(path: str, key: str = "secret_access_key_file") -> str:
    """Given a secret file path, return the secret. Raise ProbeError (without content)."""
    from durability.secrets import SecretFileError, read_secret_text

    try:
        return read_secret_text(path, key)
    except SecretFileError as error:
        raise ProbeError(str(error)) from error


def client_config(source: SourceSettings) -> Any:
    """Given a source, return the botocore Config of its clients."""
    from botocore.config import Config

    s3: Any = {"addressing_style": source.addressing_style}
    return Config(
        region_name=source.region or DEFAULT_REGION,
        signature_version="s3v4",
        s3=s3,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"total_max_attempts": source.retries, "mode": "standard"},
        connect_timeout=min(source.timeout, 30.0),
        read_timeout=source.timeout,
        max_pool_connections=32,
        user_agent_extra="durability",
    )


def session_for(source: SourceSettings) -> Any:
    """Given a source, return a fresh boto3 Session (one per thread: sessions are not shared).

    Credentials: `access_key_id` with `secret_access_key_file`, else `profile`, else
    boto3's usual chain (environment, instance role). Raise ProbeError if the secret
    file cannot be read or the profile does not exist.
    """
    import boto3
    import botocore.exceptions
    import botocore.loaders
    import botocore.session

    global _shared_loader
    if _shared_loader is None:
        _shared_loader = botocore.loaders.create_loader()
    core = botocore.session.Session()
    core.register_component("data_loader", _shared_loader)
    arguments: dict[str, Any] = {
        "region_name": source.region or DEFAULT_REGION,
        "botocore_session": core,
    }
    if source.access_key_id:
        if not source.secret_access_key_file:
            raise ProbeError("access_key_id needs secret_access_key_file")
        arguments["aws_access_key_id"] = source.access_key_id
        arguments["aws_secret_access_key"] = read_secret(source.secret_access_key_file)
    elif source.profile:
        arguments["profile_name"] = source.profile
    try:
        return boto3.session.Session(**arguments)
    except botocore.exceptions.ProfileNotFound as error:
        raise ProbeError(f"AWS profile {source.profile!r} not found") from error


def build_client(source: SourceSettings, service: str = "s3") -> Any:
    """Given a source, return a boto3 client of `service` ("s3", "ec2", "backup").

    The endpoint_url and ca_bundle apply to S3 only, so that an S3-compatible
    provider's settings never redirect AWS calls. Raise ProbeError on bad credentials
    settings.
    """
    session = session_for(source)
    arguments: dict[str, Any] = {"config": client_config(source)}
    if service == "s3":
        if source.endpoint_url:
            arguments["endpoint_url"] = source.endpoint_url
        if source.ca_bundle:
            arguments["verify"] = source.ca_bundle
    elif source.endpoint_url and source.kind == service_kind(service):
        arguments["endpoint_url"] = source.endpoint_url
    return session.client(service, **arguments)


def build_s3_client(source: SourceSettings) -> Any:
    """Given an s3 source, return its S3 client (see `build_client`)."""
    return build_client(source, "s3")


def service_kind(service: str) -> str:
    """Return the source kind whose endpoint_url applies to an AWS service."""
    return {"ec2": "ebs", "backup": "aws-backup"}.get(service, service)


_CODE_WORDS = {
    "InvalidAccessKeyId": "wrong credentials: the access key id is not known to the provider",
    "SignatureDoesNotMatch": "wrong credentials: the secret key does not match the access key",
    "AccessDenied": "access denied: the credentials lack permission",
    "Forbidden": "access denied: the credentials lack permission",
    "403": "access denied: the credentials lack permission",
    "InvalidClientTokenId": "wrong credentials: the access key id is not known to AWS",
    "UnrecognizedClientException": "wrong credentials: the access key id is not known to AWS",
    "AuthFailure": "wrong credentials: AWS refused them",
    "ExpiredToken": "expired credentials",
    "NoSuchBucket": "bucket does not exist",
    "404": "not found",
    "SlowDown": "the provider kept throttling (SlowDown) after every retry",
    "ServiceUnavailable": "the provider was unavailable (503) after every retry",
    "503": "the provider was unavailable (503) after every retry",
    "ThrottlingException": "AWS kept throttling after every retry",
    "RequestLimitExceeded": "AWS kept throttling after every retry",
    "ResourceNotFoundException": "not found",
    "AccessDeniedException": "access denied: the credentials lack permission",
}


def describe_aws_error(error: Exception, where: str) -> str:
    """Given a boto3/botocore error and what was being reached, return one actionable line.

    The line names the provider's error code and message; it never holds a secret.
    """
    from botocore import exceptions as bx

    if isinstance(error, bx.ClientError):
        body = error.response.get("Error", {})
        code = str(body.get("Code", "") or "")
        message = str(body.get("Message", "") or "").strip()
        words = _CODE_WORDS.get(code, "the provider refused the request")
        operation = getattr(error, "operation_name", "")
        shown = f"{code}: {message}" if message else code
        return f"{words} ({shown}; {operation} on {where})"
    if isinstance(error, bx.SSLError):
        return (
            f"TLS failure talking to {where}: {_short(error)} (check the endpoint's "
            "certificate, or set ca_bundle)"
        )
    if isinstance(error, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return f"timed out talking to {where} after every retry"
    if isinstance(error, bx.EndpointConnectionError):
        return f"cannot connect to {where}: endpoint down or unreachable"
    if isinstance(error, bx.NoCredentialsError):
        return (
            "no credentials: set access_key_id and secret_access_key_file, or profile, "
            "or give the host an instance role"
        )
    if isinstance(error, bx.ProfileNotFound):
        return f"AWS profile not found: {_short(error)}"
    return f"{type(error).__name__}: {_short(error)}"


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
