"""The single-table key layout (partition key ``pk``, sort key ``sk``, TTL attribute ``ttl``).

Every item of a repository is keyed by its ``repo_id`` (a fresh uuid per repository), so deleting
the repository's META and SLUG items makes all of its data unreachable at once. Commits
and snapshots get a partition each, which spreads a large push across partitions
instead of sending it all to one (1,000 writes a second per partition). A branch directory's
item (``a`` of ``a/b``) counts the branches below it and has no commit id (see ``refs``).

| item         | pk                              | sk              |
|--------------|---------------------------------|-----------------|
| repository   | REPO#<repo_id>                  | META            |
| repo by slug | SLUG#<owner>/<name>             | SLUG            |
| branch ref   | REPO#<repo_id>                  | REF#<branch>    |
| branch dir   | REPO#<repo_id>                  | REF#<directory> |
| collaborator | REPO#<repo_id>                  | COLLAB#<handle> |
| pack         | REPO#<repo_id>                  | PACK#<mpack>    |
| MIDX pointer | REPO#<repo_id>                  | PACK#MIDX       |
| pack unfolded| REPO#<repo_id>                  | PACK#MIDX#<mpack> |
| commit       | COMMIT#<repo_id>#<commit_id>    | COMMIT          |
| snapshot     | SNAP#<repo_id>#<snapshot_id>    | SNAP            |
| push record  | PUSH#<repo_id>#<push_id>        | PUSH            |
| identity     | IDENT#<identity_id>             | IDENT           |
| handle       | HANDLE#<handle>                 | HANDLE          |
| nonce        | NONCE#<identity_id>#<nonce>     | NONCE           |
| log cursor   | CURSOR#<token>                  | CURSOR          |
| tag          | REPO#<repo_id>                  | TAG#<tag_id>    |
| release      | REPO#<repo_id>                  | RELEASE#<tag>   |
| protection   | REPO#<repo_id>                  | PROTECTION      |
| push event   | REPO#<repo_id>                  | EVENT#<published_at>#<event_id> |
| outbox       | OUTBOX                          | OUT#<created_at>#<change_id> |
| token        | TOKEN#<token_id>                | TOKEN           |
| its listing  | TOKENS#<identity_id>            | TOKEN#<token_id>|
| GC's hold    | REPO#<repo_id>                  | GC              |
| deleted repo | DELETED                         | <repo_id>       |
| repo usage   | REPO#<repo_id>                  | USAGE           |
| pack counted | REPO#<repo_id>                  | STORED#<mpack>  |
| owner usage  | OWNER#<owner>                   | USAGE           |
| push window  | REPO#<repo_id> or OWNER#<owner> | RATE#<window>   |

Sort-key prefixes end in ``_SK``: a Query of a repository's partition by prefix lists one kind.
The outbox is one partition for every repository: what the publisher sweeps is one Query.
"""

from __future__ import annotations

from muse_cloud.storage.backend import Key


def repo_meta(repo_id: str) -> Key:
    return {"pk": f"REPO#{repo_id}", "sk": "META"}


def repo_slug(owner: str, name: str) -> Key:
    return {"pk": f"SLUG#{owner}/{name}", "sk": "SLUG"}


def repo_partition(repo_id: str) -> str:
    return f"REPO#{repo_id}"


REF_SK = "REF#"
COLLAB_SK = "COLLAB#"
PACK_SK = "PACK#"
TAG_SK = "TAG#"
RELEASE_SK = "RELEASE#"
TOKEN_SK = "TOKEN#"
EVENT_SK = "EVENT#"
OUTBOX = "OUTBOX"
OUTBOX_SK = "OUT#"
STORED_SK = "STORED#"
RATE_SK = "RATE#"


def ref(repo_id: str, branch: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{REF_SK}{branch}"}


def collaborator(repo_id: str, handle: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{COLLAB_SK}{handle}"}


def pack(repo_id: str, mpack_hex: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{PACK_SK}{mpack_hex}"}


# The MIDX pointer and the packs its MIDX may not cover yet sort together: one Query reads both.
MIDX_SK = f"{PACK_SK}MIDX"
UNFOLDED_SK = f"{MIDX_SK}#"


def midx_pointer(repo_id: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": MIDX_SK}


def unfolded_pack(repo_id: str, mpack_hex: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{UNFOLDED_SK}{mpack_hex}"}


def commit(repo_id: str, commit_id: str) -> Key:
    return {"pk": f"COMMIT#{repo_id}#{commit_id}", "sk": "COMMIT"}


def snapshot(repo_id: str, snapshot_id: str) -> Key:
    return {"pk": f"SNAP#{repo_id}#{snapshot_id}", "sk": "SNAP"}


def push(repo_id: str, push_id: str) -> Key:
    return {"pk": f"PUSH#{repo_id}#{push_id}", "sk": "PUSH"}


# The kinds of item keyed by a repository's id outside its partition (one partition each, so no
# Query lists them): a repository's garbage collection finds them by these prefixes. A new kind
# keyed so must be added here, or it outlives its deleted repository.
REPO_KEYED_KINDS = ("COMMIT", "SNAP", "PUSH")


def repo_keyed_prefixes(repo_id: str) -> tuple[str, ...]:
    return tuple(f"{kind}#{repo_id}#" for kind in REPO_KEYED_KINDS)


def gc_hold(repo_id: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": "GC"}


DELETED_REPOS = "DELETED"


def deleted_repo(repo_id: str) -> Key:
    return {"pk": DELETED_REPOS, "sk": repo_id}


def identity(identity_id: str) -> Key:
    return {"pk": f"IDENT#{identity_id}", "sk": "IDENT"}


def handle(name: str) -> Key:
    return {"pk": f"HANDLE#{name}", "sk": "HANDLE"}


def nonce(identity_id: str, value: str) -> Key:
    return {"pk": f"NONCE#{identity_id}#{value}", "sk": "NONCE"}


def log_cursor(token: str) -> Key:
    return {"pk": f"CURSOR#{token}", "sk": "CURSOR"}


def tag(repo_id: str, tag_id: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{TAG_SK}{tag_id}"}


def release(repo_id: str, tag_name: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{RELEASE_SK}{tag_name}"}


def token(token_id: str) -> Key:
    return {"pk": f"TOKEN#{token_id}", "sk": "TOKEN"}


def tokens_of(identity_id: str) -> str:
    return f"TOKENS#{identity_id}"


def token_listing(identity_id: str, token_id: str) -> Key:
    return {"pk": tokens_of(identity_id), "sk": f"{TOKEN_SK}{token_id}"}


def protection(repo_id: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": "PROTECTION"}


def outbox(created_at: str, change_id: str) -> Key:
    return {"pk": OUTBOX, "sk": f"{OUTBOX_SK}{created_at}#{change_id}"}


def push_event(repo_id: str, published_at: str, event_id: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{EVENT_SK}{published_at}#{event_id}"}


def owner_partition(owner: str) -> str:
    return f"OWNER#{owner}"


def repo_usage(repo_id: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": "USAGE"}


def owner_usage(owner: str) -> Key:
    return {"pk": owner_partition(owner), "sk": "USAGE"}


def stored_pack(repo_id: str, mpack_hex: str) -> Key:
    return {"pk": repo_partition(repo_id), "sk": f"{STORED_SK}{mpack_hex}"}


def push_window(partition: str, window: int) -> Key:
    return {"pk": partition, "sk": f"{RATE_SK}{window}"}
