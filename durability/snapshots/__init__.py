"""Provider snapshots: prove that each source's backups exist, are fresh, complete and
not shrinking (`durability snapshots`).

gather (`s3`, `ebs`, `awsbackup`, `resticrepo`: one module per kind behind the
`SnapshotSource` protocol of `records`), evaluate (`evaluate`, pure), and the command
(`command`) that runs sources concurrently and records the history (`history`).
"""
