"""The one parser of restic's `ls --json` output and tree blobs (captured from 0.14 and 0.18)."""

from __future__ import annotations

import pytest

from durability import resticls
from durability.errors import ParseError

# restic 0.18 `ls --json` of a folder with a name that is not UTF-8 (bytes ff fe).
LS_018 = (
    '{"time":"2026-12-01T21:43:47.31211067Z","tree":"550d31d6","paths":["/tmp/rx/data"],'
    '"hostname":"vm","username":"root","id":"3af20ad7","short_id":"3af20ad7",'
    '"message_type":"snapshot","struct_type":"snapshot"}\n'
    '{"name":"d\\ufffd\\ufffdir","type":"dir","path":"/tmp/rx/data/d\\ufffd\\ufffdir","uid":0,'
    '"gid":0,"mode":2147484141,"permissions":"drwxr-xr-x",'
    '"mtime":"2026-12-01T21:43:41.940692159Z","inode":2181642,"message_type":"node",'
    '"struct_type":"node"}\n'
    '{"name":"ok.txt","type":"file","path":"/tmp/rx/data/ok.txt","uid":0,"gid":0,"size":2,'
    '"mode":8389101,"permissions":"urwxr-xr-x","mtime":"2026-12-01T21:43:41.940893474Z",'
    '"inode":2181644,"message_type":"node","struct_type":"node"}\n'
)

# A tree blob (`restic cat blob`) of restic 0.18: Go-quoted names, raw link target.
TREE_018 = (
    '{"nodes":[{"name":"d\\\\xff\\\\xfeir","type":"dir","mode":2147484141,'
    '"mtime":"2026-12-01T21:43:41.940692159Z","uid":0,"gid":0,"inode":2181642,'
    '"device_id":65024,"content":null,"subtree":"bd81b5aa"},'
    '{"name":"hard.txt","type":"file","mode":8389101,"mtime":"2026-12-01T21:43:41.940893474Z",'
    '"uid":0,"gid":0,"inode":2181644,"device_id":65024,"size":2,"links":2,'
    '"extended_attributes":[{"name":"user.test","value":"dmFs"}],"content":["8f43"]},'
    '{"name":"lnk","type":"symlink","mode":134218239,"mtime":"2026-12-01T21:43:41.940941382Z",'
    '"uid":0,"gid":0,"inode":2181646,"device_id":65024,"links":1,"linktarget":"tar\\ufffdget",'
    '"linktarget_raw":"dGFy/2dldA==","content":null},'
    '{"name":"new\\\\nline","type":"file","mode":420,"mtime":"2026-12-01T21:43:41Z",'
    '"uid":0,"gid":0,"size":2,"links":1,"content":["1843"]}]}'
)


def test_parse_ls_snapshot_line_and_nodes_with_modes_and_times() -> None:
    listing = resticls.parse_ls(LS_018)
    assert listing.snapshot is not None and listing.snapshot.id == "3af20ad7"
    folder, plain = listing.nodes
    assert folder.type == "dir" and not folder.exact
    assert folder.path == "/tmp/rx/data/d\ufffd\ufffdir".encode()
    assert plain.exact and plain.mode == 0o4755 and plain.size == 2
    assert plain.mtime_ns == 1796161421940893474
    assert plain.inode == 2181644 and plain.links is None and plain.xattrs is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "line 2: restic ls: not JSON"),
        ('{"struct_type":"node","type":"file"}', "line 2: restic ls: node without an absolute"),
        ('{"struct_type":"node","type":"blob","path":"/a"}', "unknown node type 'blob'"),
        ('{"struct_type":"node","type":"file","path":"/a","size":"9"}', "size is not a whole"),
        ('{"struct_type":"node","type":"file","path":"/a","mtime":"yesterday"}', "not a timestamp"),
        ('{"struct_type":"status"}', "unknown struct_type 'status'"),
        ("[1]", "not a JSON object"),
    ],
)
def test_parse_ls_bad_line_error_names_line_and_reason(line: str, reason: str) -> None:
    text = '{"struct_type":"node","type":"dir","path":"/d"}\n' + line + "\n"
    with pytest.raises(ParseError, match=reason):
        resticls.parse_ls(text)


def test_parse_tree_raw_names_link_target_links_xattrs() -> None:
    folder, hard, link, newline = resticls.parse_tree(TREE_018, b"/tmp/rx/data")
    assert folder.path == b"/tmp/rx/data/d\xff\xfeir" and folder.subtree == "bd81b5aa"
    assert hard.links == 2 and hard.device == 65024 and hard.inode == 2181644
    assert hard.xattrs == (resticls.Xattr(b"user.test", b"val"),)
    assert link.linktarget == b"tar\xffget"
    assert newline.path == b"/tmp/rx/data/new\nline" and newline.xattrs == ()


def test_parse_tree_bad_name_error() -> None:
    with pytest.raises(ParseError, match="node 0"):
        resticls.parse_tree('{"nodes":[{"name":"a/b","type":"file"}]}', b"/x")
    with pytest.raises(ParseError, match="no node list"):
        resticls.parse_tree('{"id": 1}', b"/x")


def test_go_lossy_and_unquote_round_trip() -> None:
    assert resticls.go_lossy(b"d\xff\xfeir") == "d\ufffd\ufffdir"
    assert resticls.go_lossy(b"caf\xe8\x80") == "caf\ufffd\ufffd"  # one per byte, as Go
    assert resticls.go_lossy("zażółć".encode()) == "zażółć"
    assert resticls.go_unquote("d\\xff\\tq\\u00e9\\\\") == b"d\xff\tq\xc3\xa9\\"
    with pytest.raises(ValueError):
        resticls.go_unquote("bad\\q")


def test_path_fields_b64_only_when_not_utf8() -> None:
    assert resticls.path_fields(b"/ok") == {"path": "/ok"}
    assert resticls.path_fields(b"/\xff") == {"path": "/\\xff", "path_b64": "L/8="}
