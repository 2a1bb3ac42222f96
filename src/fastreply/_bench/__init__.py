"""Private helpers of ``fastreply bench --e2e`` (not an API).

:mod:`fastreply._bench.e2e` sends mail end to end (to Postfix's ``smtp-sink``
or a given server) with several clients, each in its own process;
:mod:`fastreply._bench.proxy` is the delaying TCP proxy of its latency mode.
Nothing here is imported unless the end-to-end benchmark runs.
"""
