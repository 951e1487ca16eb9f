"""``muse-cloud token create|list|revoke``: personal access tokens for the Muse client.

Every call is signed with the identity's key: a token is what the Muse client sends as
``Authorization: Bearer``, and only the key that owns a token manages it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from muse_cloud_cli.errors import Exit

if TYPE_CHECKING:
    from muse_cloud_cli.client import MuseCloudClient

ClientFactory = Callable[..., "MuseCloudClient"]


def create_token(
    client: MuseCloudClient, name: str, scope: str, expires_in_days: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "scope": scope, "expires_in_days": expires_in_days}
    answer: dict[str, Any] = client.request("POST", "/api/tokens", body).json()
    return answer


def list_tokens(client: MuseCloudClient) -> list[dict[str, Any]]:
    tokens: list[dict[str, Any]] = client.request("GET", "/api/tokens").json()["tokens"]
    return tokens


def revoke_token(client: MuseCloudClient, token_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.request("DELETE", f"/api/tokens/{token_id}").json()
    return answer


def add_token_commands(
    commands: Any, parents: list[argparse.ArgumentParser], client_for: ClientFactory
) -> None:
    """The ``token`` command group; ``client_for(server, identity, required=True)`` signs."""

    def cmd_create(args: argparse.Namespace) -> int:
        with client_for(args.server, args.identity, required=True) as client:
            token = create_token(client, args.name, args.scope, args.expires_in)
        expiry = token["expires_at"] or "never"
        print(f"token {token['token_id']} ({token['scope']}), expires at {expiry}")
        print("it is shown once: muse auth login --hub SERVER --token TOKEN")
        print(token["token"])
        return Exit.OK

    def cmd_list(args: argparse.Namespace) -> int:
        with client_for(args.server, args.identity, required=True) as client:
            for token in list_tokens(client):
                state = "revoked" if token["revoked_at"] else "active"
                print(
                    f"{token['token_id']}  {token['scope']:<5}  {state:<7}  "
                    f"expires {token['expires_at'] or 'never'}  {token['name']}"
                )
        return Exit.OK

    def cmd_revoke(args: argparse.Namespace) -> int:
        with client_for(args.server, args.identity, required=True) as client:
            revoked = revoke_token(client, args.token_id)
        print(f"revoked {revoked['token_id']} at {revoked['revoked_at']}")
        return Exit.OK

    token = commands.add_parser("token", help="personal access tokens for the Muse client")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = token_commands.add_parser("create", parents=parents, help="make a token")
    create.add_argument("--name", default="", help="a label to tell tokens apart")
    create.add_argument(
        "--scope",
        choices=("read", "write", "admin"),
        default="write",
        help="what the token may do, never more than its owner (default: write)",
    )
    create.add_argument("--expires-in", type=int, metavar="DAYS", help="default: never")
    create.set_defaults(run=cmd_create)
    listing = token_commands.add_parser("list", parents=parents, help="the identity's tokens")
    listing.set_defaults(run=cmd_list)
    revoke = token_commands.add_parser("revoke", parents=parents, help="revoke a token")
    revoke.add_argument("token_id", metavar="ID", help="the token's id, as `token list` shows it")
    revoke.set_defaults(run=cmd_revoke)
