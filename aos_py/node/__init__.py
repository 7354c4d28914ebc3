"""The local AO node: wallets, ANS-104 items, mu / su / cu, the SQLite store, the gateway and cron."""
