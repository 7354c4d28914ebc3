"""The client API: spawn, send, eval, dryrun, results, monitor, subscribe, data — against the local node,
or a remote one over HTTP (MU_URL / CU_URL, Client.remote)."""

from aos_py.client.client import Client
from aos_py.client.errors import ClientError, NodeUnavailable, NotFoundError, RejectedError, ResultTimeout
from aos_py.node.wallet import Wallet, WalletError, load_wallet

__all__ = ["Client", "ClientError", "NodeUnavailable", "NotFoundError", "RejectedError", "ResultTimeout",
           "Wallet", "WalletError", "load_wallet"]
