"""End-to-end throughput of the gateway as its own process, on SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.throughput             # both databases, ~6 min on 2 cores
    .venv/bin/python -m benchmarks.throughput --database postgresql --json figures.json
    .venv/bin/python -m benchmarks.throughput --database postgresql --soak 1000000

For each database it makes a fresh data directory, database (a SQLite file, or a
PostgreSQL schema of its own) and broker prefix, registers the principals, starts
``silian serve`` as a subprocess and waits for health SERVING. A load process
(multiprocessing, spawn) signs messages *before* the clock starts and submits
them; a consumer process reads the recipients' inboxes with ``Subscribe`` and
settles them on the stream in batches, checking every receipted message
reached every recipient its receipt names (deduplicated by mid; duplicates counted).

Phases, per database:

1. warm-up: a few unary messages from each agency, all delivered (proves the
   consumer is connected; not measured);
2. low: unary at a fixed low rate (``--low-rate``, 50 msg/s, for ``--low-seconds``),
   open-loop: ``latency_ms`` is send → receipt, ``delivery_latency_ms`` is the
   sender having the receipt → the recipient having the delivery;
3. stream: ``--messages`` messages over ``SubmitStream`` from judicial
   (roster.change → police + procuratorate), police (verification.result →
   judicial) and procuratorate (inspection.finding → judicial) on five
   concurrent streams (at most 512 unanswered each): accepted msg/s and
   end-to-end msg/s (first submit → last delivery received by a recipient).
   Sending stops after ``--stream-seconds`` if the gateway is too slow to take
   them all, so that the default run ends in time;
4. unary at a fixed offered rate (``--rate``, 500 msg/s, for ``--rate-seconds``):
   an open-loop schedule on ``--rate-threads`` client threads; latency counts from
   each message's scheduled send time, so a stall is not hidden (no coordinated
   omission);
5. unary at maximum throughput, ``--concurrency`` (64) calls in flight
   (for at most ``--cap-seconds``);
6. unary below capacity: like 4, offered at ``--below-fraction`` (half) of the
   rate phase 5 reached, for the latency a client sees when the gateway is
   not saturated;
7. naive reference: the gateway restarted with SILIAN_COMMIT_BATCH=1,
   SILIAN_RELAY_WINDOW=1, SILIAN_RELAY_BATCH=1 and one unary call at a time;
   the ratio printed is stream e2e msg/s ÷ naive e2e msg/s, within this run.

Every phase reports the gateway's CPU milliseconds per accepted message
(``gateway_cpu_ms_per_message``: its CPU time over the phase ÷ messages).

``--soak N`` instead streams N messages (signed on the fly: a soak measures the
gateway's memory, not the client) and prints the gateway's RSS against the
number of messages accepted. The gateway's RSS (VmRSS) is sampled throughout
and its peak (VmHWM) read before it stops. CPU shares of the gateway, the load
and consumer processes, PostgreSQL, RabbitMQ and everything else on the machine
("other": another test run, say) are measured per phase from /proc (100 % = one
core). ``--profile DIR`` records the gateway with py-spy (GIL holder only) during
each measured phase and prints where its Python time goes (``pip install py-spy``
into the venv first; it is not a project dependency).

The gateway measured is the ``gateway`` package the interpreter imports (its
path and git revision are printed): to measure a fixed copy while the work tree
changes, put that copy first on PYTHONPATH.

The gateway runs with its default settings except a wider clock-skew allowance
(SILIAN_CLOCK_SKEW_SECONDS, so that messages signed before a long phase stay
valid) and a short shutdown grace. Everything made — processes, data directory,
schema, queues and exchanges — is removed at the end, also on Ctrl-C.

The modules: ``cli`` (options, the run, the report), ``harness`` (one
database: set-up, the gateway process — ``gateway.testing.GatewayProcess`` —,
the phases), ``mix`` (who sends what, payloads), ``load`` and ``consumer``
(the two worker processes, with ``worker``), ``results`` (deliveries and
phase figures), ``machine`` (/proc), ``profile`` (py-spy) and ``report``
(tables and verdicts).
"""
