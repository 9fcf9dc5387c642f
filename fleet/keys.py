"""Every Redis key Vitrine uses, in one place. Nothing about money lives only in Redis.

All keys share the `vitrine:` prefix so an operator can find (and a test can flush) them.
"""

from __future__ import annotations

PREFIX = "vitrine"


# --- bot instances -------------------------------------------------------------------------
def runtime(instance_id: int) -> str:
    """Hash: the runtime record (state, pid, pid_start, node, since, latency_ms, guilds,
    last_error JSON, restarts, config_version, next_start_at). No expiry; deleted with the
    instance."""
    return f"{PREFIX}:inst:{instance_id}:rt"


def heartbeat(instance_id: int) -> str:
    """String with TTL (HEARTBEAT_TTL s): the worker's last heartbeat timestamp. Its absence
    means the worker is silent."""
    return f"{PREFIX}:inst:{instance_id}:hb"


def crashes(instance_id: int) -> str:
    """List (newest first, capped at CRASH_HISTORY_MAX): JSON crash records {at, code,
    uptime_s, error}. Fine to lose: the policy then starts a fresh streak."""
    return f"{PREFIX}:inst:{instance_id}:crashes"


def errors(instance_id: int) -> str:
    """List (newest first, capped at ERROR_HISTORY_MAX): JSON lastError records."""
    return f"{PREFIX}:inst:{instance_id}:errors"


def session_limit(instance_id: int) -> str:
    """Hash: Discord session_start_limit as last read {total, remaining, reset_at}."""
    return f"{PREFIX}:inst:{instance_id}:ssl"


def restart_budget(instance_id: int, day: str) -> str:
    """Counter of logins (gateway IDENTIFYs, READY received) on a UTC day (YYYYMMDD), INCR'd
    by the worker; a start that RESUMEs spends none. Expires after 2 days."""
    return f"{PREFIX}:inst:{instance_id}:starts:{day}"


def exit_info(instance_id: int) -> str:
    """Hash with TTL (EXIT_INFO_TTL s): how the last worker process of the instance ended,
    written by the worker just before it exits {pid, code, at, detail}. Read by the
    orchestrator when the process is gone; its absence means killed by a signal."""
    return f"{PREFIX}:inst:{instance_id}:exit"


def lease(instance_id: int) -> str:
    """String with TTL: `node:fencing_token` of the orchestrator node that owns the instance
    (see fleet.leases)."""
    return f"{PREFIX}:inst:{instance_id}:lease"


def gateway_session(instance_id: int) -> str:
    """Hash with TTL (GATEWAY_SESSION_TTL s), rewritten by the worker with its heartbeats: the
    bot's Discord gateway session {session_id, resume_url, seq, app_id, at} that a successor
    RESUMEs (worker.resume). `seq` lags a beat behind what was received, so a few events may
    be replayed twice (handlers are replay-safe) and none is lost. Deleted when the session
    ends for good (clean stop, INVALID_SESSION)."""
    return f"{PREFIX}:inst:{instance_id}:gw"


def interaction_claim(interaction_id: str) -> str:
    """String with TTL (INTERACTION_CLAIM_TTL s): SET NX by the worker that acts on an
    interaction; a replayed copy (after a RESUME) finds it and is not acted on twice."""
    return f"{PREFIX}:ix:{interaction_id}"


FENCING_COUNTER = f"{PREFIX}:fence"  # INCR'd for every lease grant (fencing tokens)
# Set of instance ids whose desired state changed in the database; the web tier SADDs them
# (fleet.control_protocol.mark_dirty) after an edit, the orchestrator SPOPs them. No expiry.
INSTANCES_DIRTY = f"{PREFIX}:inst:dirty"


# --- orchestrator ----------------------------------------------------------------------------
def orchestrator_heartbeat(node: str) -> str:
    """String with TTL (ORCHESTRATOR_TTL s): the node's last heartbeat timestamp."""
    return f"{PREFIX}:orch:{node}:hb"


ORCHESTRATOR_NODES = f"{PREFIX}:orch:nodes"  # Set of node names ever seen (pruned by TTL check)


def orchestrator_status(node: str) -> str:
    """Hash with TTL (ORCHESTRATOR_TTL s), rewritten every heartbeat: the node's figures
    {started_at, managed, live, online, adopted, drained, pass_at, pass_ms}."""
    return f"{PREFIX}:orch:{node}:status"


# --- control commands (web tier -> orchestrator) ---------------------------------------------
CONTROL_STREAM = f"{PREFIX}:control"  # Stream of {cmd_id, action, instance_id, reason, actor}
CONTROL_GROUP = "orchestrators"  # Consumer group on CONTROL_STREAM (and on the node streams)


def node_leases(node: str) -> str:
    """Set of the instance ids whose lease the node took (fleet.leases): when the node dies,
    the others look here for the bots to take over once those leases lapse."""
    return f"{PREFIX}:orch:{node}:leases"


def control_node_stream(node: str) -> str:
    """Stream of commands for one node only: node-wide ones (stop-all) and instance commands
    forwarded by the node that read them to the node that holds the instance's lease."""
    return f"{PREFIX}:control:node:{node}"


def control_reply(cmd_id: str) -> str:
    """List with TTL (CONTROL_REPLY_TTL s): the orchestrator's JSON answer to one command."""
    return f"{PREFIX}:control:reply:{cmd_id}"


# --- deliveries (payments -> worker) --------------------------------------------------------
def delivery_stream(instance_id: int) -> str:
    """Stream of {order_id}: paid orders for one instance's worker; trimmed to ~10k entries."""
    return f"{PREFIX}:deliver:{instance_id}"


DELIVERY_GROUP = "workers"  # Consumer group on each delivery stream


# --- storefront (added by the storefront issue) ---------------------------------------------
def panels(instance_id: int) -> str:
    """Hash product_id -> JSON {channel, message, fp, name, locale}: where the worker posted
    each product panel and the catalog fingerprint it shows. No expiry; losing it only means
    the staff runs /painel again."""
    return f"{PREFIX}:inst:{instance_id}:panels"


# --- web -------------------------------------------------------------------------------------
def rate_limit(scope: str, who: str, window: int) -> str:
    """Counter with TTL = window length: requests of `who` in `scope` in one window."""
    return f"{PREFIX}:rl:{scope}:{who}:{window}"


def service_heartbeat(service: str) -> str:
    """String with TTL: last heartbeat of a long-lived web service (portal, admin)."""
    return f"{PREFIX}:svc:{service}:hb"


# --- Mercado Pago webhook flood guard (shop.payments.webhook_guard) -------------------------
# Hash reason -> count: webhook deliveries answered without being stored (bad signature,
# unknown IPN id, duplicate, rate limited…). Never expires: a Prometheus counter, exposed by
# the admin's /metrics (a Redis flush resets it, which Prometheus treats as a counter reset).
WEBHOOK_REJECTED = f"{PREFIX}:wh:rejected"
# String with TTL (the alert window): set when a webhook_forgery alert was raised, so at most
# one is raised per window.
WEBHOOK_FORGERY_ALERTED = f"{PREFIX}:wh:forgery:alerted"


def webhook_forgery(minute: int) -> str:
    """Counter with TTL 120 s: bad-signature webhook deliveries in one minute (epoch // 60)."""
    return f"{PREFIX}:wh:forgery:{minute}"


def webhook_ipn(provider_payment_id: str) -> str:
    """String with TTL (IPN_DEDUPE_S): a legacy IPN for this payment was accepted recently;
    others within the window are acknowledged without a fetch."""
    return f"{PREFIX}:wh:ipn:{provider_payment_id}"


# --- PIX polling and the buyer's "Verificar pagamento" button (shop.payments.payment_polling)
# Sorted set: one member per request to Mercado Pago made by polling or a button press in the
# last 60 s (score = epoch seconds); trimmed on every use, expires 61 s after the last one.
MP_POLL_BUDGET = f"{PREFIX}:mp:poll:budget"


def payment_check_cooldown(order_id: int) -> str:
    """String with TTL (CHECK_COOLDOWN_S): the buyer asked about this order's payment just now;
    another press before it expires is told how long to wait."""
    return f"{PREFIX}:mp:check:{order_id}:cd"


def payment_check_count(order_id: int) -> str:
    """Counter with TTL (CHECK_COUNT_TTL s): button presses that reached Mercado Pago for this
    order (at most CHECK_MAX_PER_ORDER)."""
    return f"{PREFIX}:mp:check:{order_id}:n"


HEARTBEAT_TTL = 60
ORCHESTRATOR_TTL = 15  # at most; a node beats every 5 s and its key lives 3 beats
CONTROL_REPLY_TTL = 120
EXIT_INFO_TTL = 7 * 86400
GATEWAY_SESSION_TTL = 600  # a stored session older than this is not worth a RESUME attempt
INTERACTION_CLAIM_TTL = 15 * 60  # an interaction token lives 15 min
CRASH_HISTORY_MAX = 50
ERROR_HISTORY_MAX = 20
